#!/usr/bin/env python3
"""fake_atc: a TEST DOUBLE of Huawei's atc. Its ".om" is the ONNX model with atc's --input_shape filled in.

It checks the arguments the way atc needs them (--key=value, framework 5, an existing model, -1 dims only with
one dynamic_* option of 2 to 100 profiles, as atc's parameter pages say), records its argv
to the JSON file named by $FAKE_ASCEND_ARGV_LOG, and fails on request ($FAKE_ASCEND_FAIL=atc).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fake_common as fake  # noqa: E402

TYPES = {"FP32": 1, "FP16": 10, "UINT8": 2, "INT8": 3}  # --output_type names → ONNX TensorProto types


def retype_io(model, options) -> None:
    """What atc's --input_fp16_nodes, --out_nodes and --output_type do to the .om's interface (atc parameter
    pages): the named inputs take fp16 data; out_nodes chooses and orders the outputs; model-wide output_type
    retypes the float outputs, 'node:index:TYPE' the named ones."""
    import onnx
    from onnx import helper

    graph = model.graph
    for name in filter(None, options.get("input_fp16_nodes", "").split(";")):
        value = next(v for v in graph.input if v.name == name)
        inner = f"{name}__fp32"
        for node in graph.node:
            node.input[:] = [inner if i == name else i for i in node.input]
        graph.node.insert(0, helper.make_node("Cast", [name], [inner], to=onnx.TensorProto.FLOAT))
        value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    nodes = {n.name: n for n in graph.node}
    if options.get("out_nodes"):  # the .om's outputs are the named node outputs, in that order
        chosen = [nodes[node].output[int(index)] for node, _, index in
                  (part.rpartition(":") for part in options["out_nodes"].split(";"))]
        by_name = {o.name: o for o in graph.output}
        kept = [by_name[name] for name in chosen]
        del graph.output[:]
        graph.output.extend(kept)
    wanted = options.get("output_type")
    if not wanted:
        return
    if wanted in TYPES:
        retyped = {o.name: TYPES[wanted] for o in graph.output if o.type.tensor_type.elem_type in (1, 10, 11)}
    else:
        retyped = {}
        for part in wanted.split(";"):
            node, index, kind = part.split(":")
            retyped[nodes[node].output[int(index)]] = TYPES[kind]
    for output in graph.output:
        if output.name in retyped and output.type.tensor_type.elem_type != retyped[output.name]:
            inner = f"{output.name}__before_output_type"
            for node in graph.node:
                node.output[:] = [inner if o == output.name else o for o in node.output]
                node.input[:] = [inner if i == output.name else i for i in node.input]
            graph.node.append(helper.make_node("Cast", [inner], [output.name], to=retyped[output.name]))
            output.type.tensor_type.elem_type = retyped[output.name]


def main(argv):
    fake.record("atc", argv)
    fake.maybe_fail("atc")
    options = fake.parse_options(argv)
    if isinstance(options, str):
        print(options, file=sys.stderr)
        return 1
    for required in ("framework", "model", "output", "soc_version"):
        if required not in options:
            print(f"E10004: argument --{required} is required", file=sys.stderr)
            return 1
    if options["framework"] != "5":
        print(f"E10001: --framework={options['framework']} is not ONNX (5)", file=sys.stderr)
        return 1
    if not Path(options["model"]).is_file():
        print(f"E10001: model file {options['model']} does not exist", file=sys.stderr)
        return 1
    problem = fake.dynamic_problem(options)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    import json

    import onnx

    model = onnx.load(options["model"])
    shapes = fake.parse_dym_dims(options.get("input_shape"))
    for value in model.graph.input:
        for dim, size in zip(value.type.tensor_type.shape.dim, shapes.get(value.name, [])):
            if size > 0:
                dim.Clear()
                dim.dim_value = size
    retype_io(model, options)
    # the fake .om keeps atc's shapes and profiles, from which the fake runners size their output buffers
    option = next((name for name in fake.DYNAMIC_OPTIONS if name in options), None)
    profiles = []
    if option == "dynamic_batch_size":
        profiles = [[int(v)] for v in options[option].split(",")]
    elif option:
        profiles = [[int(v) for v in p.split(",")] for p in options[option].split(";")]
    onnx.helper.set_model_props(model, {fake.PROFILES_KEY: json.dumps(
        {"input_shape": shapes, "option": option, "profiles": profiles})})
    out = Path(options["output"] + ".om")
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    print("ATC start working now, please wait for a moment.")
    print("ATC run success, welcome to the next use.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""fake_atc: a TEST DOUBLE of Huawei's atc. Its ".om" is the ONNX model with atc's --input_shape filled in.

It checks the arguments the way atc needs them (--key=value, framework 5, an existing model), records its argv
to the JSON file named by $FAKE_ASCEND_ARGV_LOG, and fails on request ($FAKE_ASCEND_FAIL=atc).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fake_common as fake  # noqa: E402


def main(argv):
    fake.record("atc", argv)
    fake.maybe_fail("atc")
    options = {}
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            print(f"E10001: atc takes --name=value arguments, got {arg!r}", file=sys.stderr)
            return 1
        name, _, value = arg[2:].partition("=")
        options[name] = value
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
    import onnx

    model = onnx.load(options["model"])
    shapes = fake.parse_dym_dims(options.get("input_shape"))
    for value in model.graph.input:
        for dim, size in zip(value.type.tensor_type.shape.dim, shapes.get(value.name, [])):
            if size > 0:
                dim.Clear()
                dim.dim_value = size
    out = Path(options["output"] + ".om")
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    print("ATC start working now, please wait for a moment.")
    print("ATC run success, welcome to the next use.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

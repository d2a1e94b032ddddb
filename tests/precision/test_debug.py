"""porter debug: tensors matched across passes by name and provenance, per-layer errors, the first divergence."""
from __future__ import annotations

import itertools

import onnx
from onnx import TensorProto, helper
from precision_support import FP16

from porter.precision.matching import match_tensors
from porter.precision.provenance import (
    Provenance,
    carry_provenance,
    note_provenance,
    read_provenance,
)


def _chain(names):
    nodes = [helper.make_node("Relu", [a], [b], name=f"n_{b}") for a, b in itertools.pairwise(names)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(names[0], TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, [2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_provenance_is_carried_and_composed_across_two_renaming_passes():
    export = _chain(["x", "a", "y"])
    first = _chain(["x", "b", "y"])  # pass 1 renamed a to b
    note_provenance(first, [Provenance("b", "a")])
    second = _chain(["x", "c", "y"])  # pass 2 renamed b to c, knowing nothing of a
    note_provenance(second, [Provenance("c", "b", slices=((0, 0, 1),))])
    carry_provenance(read_provenance(first), second)
    assert read_provenance(second)["c"] == Provenance("c", "a", slices=((0, 0, 1),))
    third = _chain(["x", "c", "y"])  # a pass that rebuilt the model and dropped the metadata
    carry_provenance(read_provenance(second), third)
    assert read_provenance(third) == read_provenance(second)
    matches = {(m.reference, m.variant, m.matched_by) for m in match_tensors(export, third)}
    assert matches == {("x", "x", "name"), ("a", "c", "provenance"), ("y", "y", "name")}


def test_split_and_renamed_tensors_are_matched_through_the_stage(fragile):
    recipe = fragile.write(fragile.recipe(fixed={"graph_fix": ["split_and_rename", "cleanup"]}))
    code, _, err = fragile.porter("debug", recipe, "--variant", "fixed", "--all")
    assert code == 0, err
    report = fragile.debug_json("fixed")
    pairs = {(x["tensor"], x["variant_tensor"], x["matched_by"]) for x in report["layers"]}
    # the split halves are compared with the matching half of the original, the renamed tensor by its new name
    assert {("h1", "h1_left", "provenance"), ("h1", "h1_right", "provenance"), ("h1", "h1_joined", "provenance"),
            ("a1", "a1_renamed", "provenance"), ("lifted", "lifted", "name")} <= pairs
    assert all(x["max_abs"] < 1e-5 and x["cosine"] > 0.999999 for x in report["layers"])
    assert report["first_beyond"] is None and report["unmatched"] == 0
    assert "padded batch" in report["feeds"][-1]  # the dynamic batch axis gets a padded batch too


def test_fp16_divergence_starts_right_after_the_fragile_layer(fragile):
    recipe = fragile.write(fragile.recipe(fp16=FP16))
    code, out, err = fragile.porter("debug", recipe, "--variant", "fp16")
    assert code == 0, err
    report = fragile.debug_json("fp16")
    layers = {x["tensor"]: x for x in report["layers"]}
    assert report["first_beyond"] == "h2back"  # the Sub reading /big/Add's fp16-rounded 2048 + h
    assert layers["lifted"]["node"] == "/big/Add" and layers["lifted"]["max_rel"] < 1e-3
    assert layers["h2back"]["max_rel"] > 0.05 and layers["probs"]["cosine"] < 0.99
    assert all(layers[t]["max_rel"] < 2e-3 for t in ("h1", "a1", "h2"))
    assert "first tensor beyond max_rel 0.01: h2back (Sub" in out and "| FIRST |" in out
    folder = fragile.root / ".porter" / "fragile" / "debug" / "fp16"
    assert (folder / "divergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| h2back |" in (folder / "divergence.md").read_text()


def test_int8_variant_is_compared_on_its_compiled_graph(fragile):
    recipe = fragile.write(fragile.recipe(int8={"target": {"flags": {"quantize": "int8_dynamic"}}}))
    code, out, err = fragile.porter("debug", recipe, "--variant", "int8", "--tolerance", "1e-6")
    assert code == 0, err
    assert "variant graph: compile (onnxruntime)" in out
    report = fragile.debug_json("int8")
    h2 = next(x for x in report["layers"] if x["tensor"] == "h2")
    assert 0 < h2["max_abs"] < 0.5  # int8 weights and activations: small but real differences
    assert report["first_beyond"] is not None


def test_debug_refuses_the_reference_and_suggests_misspelt_variants(fragile):
    recipe = fragile.write(fragile.recipe(fp16=FP16))
    code, _, err = fragile.porter("debug", recipe, "--variant", "ref")
    assert code == 2 and "framework reference" in err
    code, _, err = fragile.porter("debug", recipe, "--variant", "fp61")
    assert code == 2 and "did you mean 'fp16'" in err


def test_split_lstm_directions_are_matched_to_their_half_of_the_bidirectional_output(tmp_path):
    """split_bidirectional_lstm records which half of Y each direction's output is; direction_sum_to_add then
    removes the Concat that rebuilt Y, and the halves are still compared with the reference's Y."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "ascend310"))
    try:
        from lstm_models import export_deepspeech_like, time_major_feeds
    finally:
        sys.path.pop(0)
    from porter.precision.matching import aligned, take
    from porter.precision.probe import TensorProbe
    from porter_ascend310.passes import PASSES

    reference = export_deepspeech_like()
    split = PASSES["split_bidirectional_lstm"][1](onnx.load_from_string(reference.SerializeToString()))
    summed = PASSES["direction_sum_to_add"][1](split)
    carry_provenance(read_provenance(split), summed)
    onnx.save(reference, str(tmp_path / "ref.onnx"))
    onnx.save(summed, str(tmp_path / "new.onnx"))
    halves = [m for m in match_tensors(reference, summed) if m.matched_by == "provenance"]
    assert len(halves) >= 2 and {m.source_slices for m in halves} >= {((1, 0, 1),), ((1, 1, 2),)}
    feeds = time_major_feeds()
    ref = TensorProbe(tmp_path / "ref.onnx", tmp_path).run(feeds)
    new = TensorProbe(tmp_path / "new.onnx", tmp_path).run(feeds)
    for m in halves:
        a = take(ref[m.reference], m.source_slices)
        b = aligned(a, take(new[m.variant], m.slices))
        assert a.shape == b.shape and float(abs(a - b).max()) < 1e-5


def test_debug_works_on_a_model_no_plugin_knows(fragile, tmp_path):
    """The generic plugin's worked example (a small CNN given as an ONNX file): an int8 variant compared layer
    by layer, the padded batch included, with no model plugin of its own."""
    import importlib.util
    import json
    from pathlib import Path

    example = Path(__file__).parents[2] / "recipes" / "examples" / "make_tiny_cnn.py"
    spec = importlib.util.spec_from_file_location("make_tiny_cnn_for_debug", example)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.write_example(tmp_path / "tiny_cnn", samples=3)
    recipe = fragile.write({
        "name": "tiny", "model": {"name": "onnx", "options": {"path": str(files / "model.onnx")}},
        "dataset": {"name": "tensors", "options": {"inputs": str(files / "inputs")}},
        "target": {"name": "onnxruntime"}, "metrics": ["cosine"],
        "variants": {"int8": {"target": {"flags": {"quantize": "int8_dynamic_conv"}}}}}, "tiny.yaml")
    code, _, err = fragile.porter("debug", recipe, "--variant", "int8")
    assert code == 0, err
    report = json.loads((fragile.root / ".porter" / "tiny" / "debug" / "int8" / "divergence.json").read_text())
    ops = {x["op"] for x in report["layers"]}
    assert {"Conv", "Gemm"} & ops and "padded batch" in report["feeds"][-1]
    assert all(0.9 < x["cosine"] <= 1.0 + 1e-9 for x in report["layers"] if not x["problem"])

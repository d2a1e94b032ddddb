"""The mixed-precision search on a model whose answer is known, and every file it emits."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import yaml
from precision_support import FP16, build_model

from porter.errors import InputError
from porter.precision.keeplist import KeepList, parse_keep_dtype

BUDGET = "delta_error_rate<=0"


def _search(fragile, *extra):
    recipe = fragile.write(fragile.recipe(fp16=FP16))
    code, out, err = fragile.porter("precision-search", recipe, "--variant", "fp16", "--budget", BUDGET, *extra)
    folder = fragile.root / ".porter" / "fragile" / "precision" / "fp16"
    return code, out, err, folder


def test_search_keeps_exactly_the_fragile_layer_and_caches_its_trials(fragile):
    code, out, err, folder = _search(fragile)
    assert code == 0, err
    result = json.loads((folder / "search.json").read_text())
    assert result["chosen"] == ["/big/Add"]
    assert result["candidates"][0]["node"] == "/big/Add"  # ranked first: its stored output is what is lost
    base = result["trials"][0]
    assert base["kept"] == [] and not base["ok"] and base["value"] > 0
    chosen = next(t for t in result["trials"] if t["kept"] == ["/big/Add"])
    assert chosen["ok"] and chosen["deltas"]["error_rate"] == 0 and chosen["throughput"] > 0
    assert "chosen: /big/Add" in out and "emulate_fp16' option keep_dtype" in out
    # a second search computes nothing: every trial is a cached variant
    code, out, err, _ = _search(fragile)
    assert code == 0, err
    again = json.loads((folder / "search.json").read_text())
    assert again["chosen"] == ["/big/Add"] and all(t["cached"] for t in again["trials"])


def test_emitted_files_have_each_targets_format(fragile):
    code, _, err, folder = _search(fragile)
    assert code == 0, err
    assert (folder / "keep_dtype.cfg").read_text() == "/big/Add\n"  # atc: one operator name a line
    assert json.loads((folder / "modify_mixlist.json").read_text()) == {"black-list": {"to-add": ["Add"]}}
    assert json.loads((folder / "nncf_ignored_scope.json").read_text()) == {"names": ["/big/Add"]}
    marker = json.loads((folder / "openvino_rt_info.json").read_text())
    assert marker["nodes"] == {"/big/Add": {"disable_fp16_compression_0": ""}}
    assert marker["honoured_at_inference"] is False
    fragment = yaml.safe_load((folder / "recipe_fragment.yaml").read_text())
    kept = fragment["variants"]["fp16_kept"]["graph_fix"][-1]
    assert kept["name"] == "emulate_fp16" and kept["options"]["keep_dtype"] == str(folder / "keep_dtype.cfg")
    ascend = fragment["variants"]["fp16_ascend310_kept"]
    assert ascend["target"]["flags"]["keep_dtype"] == str(folder / "keep_dtype.cfg")
    assert ascend["graph_fix"] == ["split_and_rename"]


@pytest.mark.slow
def test_the_fragment_restores_the_metric_on_the_cpu_and_reaches_the_atc_command(fragile):
    code, _, err, folder = _search(fragile)
    assert code == 0, err
    fragment = yaml.safe_load((folder / "recipe_fragment.yaml").read_text())
    # NNCF 3.4.0's fast bias correction fails on this model once /big/Add is ignored (it writes /fc2/MatMul's
    # 16 bias values into /big/Add's scalar constant): the OpenVINO variant is checked for its flags only
    openvino = fragment["variants"].pop("fp16_openvino_int8_kept", None)
    if openvino is not None:
        assert openvino["target"]["flags"] == {"quantize": "int8", "ignored_scope": {"names": ["/big/Add"]}}
    recipe = fragile.recipe(fp16=FP16, **fragment["variants"])
    recipe["bundle"] = str(fragile.root / "bundle")
    recipe["allow_missing_tools"] = True
    code, _, err = fragile.porter("run", fragile.write(recipe, "applied.yaml"))
    assert code == 0, err
    report = json.loads((fragile.root / ".porter" / "fragile" / "report.json").read_text())
    rows = {v["name"]: v for v in report["variants"]}
    assert rows["fp16"]["deltas"]["error_rate"] > 0
    assert rows["fp16_kept"]["deltas"]["error_rate"] == 0
    argvs = [json.loads(p.read_text()) for p in (fragile.root / "bundle").rglob("*.json")]
    atc = next(a for e in argvs for a in e.get("atc_argv", []) if a.startswith("--keep_dtype="))
    copied = fragile.root / "bundle" / atc.split("=", 1)[1]
    assert copied.read_text() == "/big/Add\n"


def test_an_unreachable_budget_says_so_and_emits_nothing(fragile):
    recipe = fragile.write(fragile.recipe(fp16=FP16))
    code, out, _ = fragile.porter("precision-search", recipe, "--variant", "fp16", "--budget",
                                  "delta_error_rate<-1", "--max-candidates", "2")
    assert code == 3 and "no keep-list among the 2 candidates" in out
    assert not (fragile.root / ".porter" / "fragile" / "precision" / "fp16" / "keep_dtype.cfg").exists()


def test_bad_budget_and_a_variant_without_a_keep_knob_are_input_errors(fragile):
    recipe = fragile.write(fragile.recipe(fp16=FP16))
    code, _, err = fragile.porter("precision-search", recipe, "--variant", "fp16", "--budget", "fp16:wer<1")
    assert code == 2 and "--budget" in err


def test_int8_keep_dtype_leaves_the_kept_node_unquantised(fragile, tmp_path):
    keep = tmp_path / "keep.cfg"
    keep.write_text("/fc2/MatMul\n")
    flags = {"quantize": "int8_dynamic", "save_optimized": False}
    recipe = fragile.recipe(int8={"target": {"flags": flags}},
                            int8_kept={"target": {"flags": {**flags, "keep_dtype": str(keep)}}})
    code, _, err = fragile.porter("run", fragile.write(recipe))
    assert code == 0, err
    compiled = {}
    for path in (fragile.root / ".porter" / "fragile" / "artifacts" / "compile").glob("*/model.onnx"):
        names = {n.name for n in onnx.load(str(path)).graph.node}
        compiled["kept" if "/fc2/MatMul" in names else "all"] = names
    assert "/fc1/MatMul_quant" in compiled["kept"] and "/fc2/MatMul_quant" not in compiled["kept"]
    assert "/fc2/MatMul_quant" in compiled["all"]


def test_emulate_fp16_keeps_listed_nodes_and_emulates_bf16(tmp_path):
    from porter_ascend310.passes.precision import emulate_fp16

    keep = tmp_path / "keep.cfg"
    keep.write_text("# the fragile node\n/big/Add\n")
    kept = emulate_fp16(build_model(), keep_dtype=keep)
    readers = [n.op_type for n in kept.graph.node if "lifted" in n.input or "lifted_fp32" in n.input]
    assert readers == ["Sub"]  # /big/Add's output goes straight on, no Cast round trip
    # everything else is still rounded: /fc2/MatMul's output goes through the fp16 round trip
    assert [n.op_type for n in kept.graph.node if "h2_fp32" in n.input] == ["Cast"]
    bf16 = emulate_fp16(build_model(), format="bf16")
    casts = {a.i for n in bf16.graph.node if n.op_type == "Cast" for a in n.attribute if a.name == "to"}
    assert onnx.TensorProto.BFLOAT16 in casts and onnx.TensorProto.FLOAT16 not in casts
    w1 = next(onnx.numpy_helper.to_array(i) for i in bf16.graph.initializer if i.name == "W1")
    assert np.all(w1.view(np.uint32) & 0xFFFF == 0)  # bf16 keeps the top 16 bits of fp32


def test_keep_dtype_files_parse_names_types_and_comments(tmp_path):
    keep = parse_keep_dtype("# comment\n/conv/Conv\n\nOpType::Conv2D\n/conv/Conv\n")
    assert keep == KeepList(("/conv/Conv",), ("Conv2D",))
    assert keep.keeps("other", "Conv") and keep.keeps("/conv/Conv", "Relu") and not keep.keeps("x", "Relu")
    assert keep.text() == "/conv/Conv\nOpType::Conv2D\n"
    with pytest.raises(InputError, match="OpType::TypeName"):
        parse_keep_dtype("OpType::\n", file=tmp_path / "k.cfg")


def test_openvino_does_not_honour_the_fp16_marker_at_inference():
    """What emit.py says of OpenVINO 2026.4.1: a node marked disable_fp16_compression_0 still runs in f16/bf16
    on the CPU plugin. If a release honours it, this fails and the emitter's note must change."""
    ov = pytest.importorskip("openvino")
    from openvino import opset13 as ops

    def compiled(marked: bool, hint: str):
        x = ops.parameter([4, 8], np.float32, name="x")
        mm = ops.matmul(x, ops.constant(np.full((8, 8), 1 + 2 ** -12, np.float32), name="W"), False, False,
                        name="mm")
        model = ov.Model([ops.relu(mm, name="relu")], [x], "marker")
        if marked:
            for op in model.get_ops():
                if op.get_friendly_name() == "mm":
                    op.get_rt_info()["disable_fp16_compression_0"] = ""
        return ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})

    x = np.ones((4, 8), np.float32)
    exact = 8 * (1 + 2 ** -12)
    for hint in ("f16", "bf16"):
        plain, marked = compiled(False, hint), compiled(True, hint)
        if plain.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32":
            pytest.skip(f"this CPU runs no {hint}")
        error = abs(float(marked(x)[0][0, 0]) - exact)
        assert error == abs(float(plain(x)[0][0, 0]) - exact) and error > 1e-3


def test_a_variant_already_within_budget_needs_no_keep_list(fragile):
    recipe = fragile.write(fragile.recipe(fp16=FP16))
    code, out, err = fragile.porter("precision-search", recipe, "--variant", "fp16", "--budget",
                                    "delta_error_rate<=50")
    assert code == 0, err
    assert "already meets" in out
    folder = fragile.root / ".porter" / "fragile" / "precision" / "fp16"
    assert json.loads((folder / "search.json").read_text())["chosen"] == []
    assert not (folder / "keep_dtype.cfg").exists()


def test_an_openvino_int8_variant_is_searched_through_its_ignored_scope(fragile):
    """The openvino target takes NNCF's ignored scope as a mapping: each trial sets {names: [...]} there."""
    pytest.importorskip("nncf")
    from porter.pipeline import _importable_from, prepare
    from porter.precision.graphs import variant_graphs
    from porter.precision.search import SCOPE_KNOB, Searcher, find_knob

    int8 = {"target": {"name": "openvino", "flags": {"quantize": "int8", "subset_size": 8}}}
    recipe_path = fragile.write(fragile.recipe(ov_int8=int8))
    recipe, plugins = prepare(recipe_path)
    if plugins.registry.get("targets", "openvino") is None:
        pytest.skip("the openvino target is not installed")
    with _importable_from(recipe.path.parent):
        graphs = variant_graphs(recipe, plugins, "ov_int8")
        knob = find_knob(graphs.variant, plugins, graphs)
        assert knob.pass_index is None and knob.flag == SCOPE_KNOB
        searcher = Searcher(recipe, plugins, graphs.variant, knob, BUDGET)
        variant, _ = searcher._variant(("/fc2/MatMul",))
        assert variant.target.flags["ignored_scope"] == {"names": ["/fc2/MatMul"]}
        trial = searcher.trial(("/fc2/MatMul",))
    assert trial.status == "ok" and trial.kept == ("/fc2/MatMul",) and trial.throughput > 0

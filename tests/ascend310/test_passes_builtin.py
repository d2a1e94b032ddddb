"""The core's builtin passes (porter/builtin/onnx_passes.py) and the ascend310 PASSES registry."""
from __future__ import annotations

import inspect

import lstm_models as lm
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from porter.builtin import onnx_passes
from porter.errors import InputError
from porter.specs import PassConfig, PassSpec
from porter_ascend310.passes import PASSES


def _copy(model):
    return onnx.ModelProto.FromString(model.SerializeToString())


@pytest.fixture(scope="module")
def exported():
    return lm.export_deepspeech_like(use_lengths=True)


def test_cleanup_folds_constants_and_keeps_outputs():
    # x[..., :x.size(2) // 2]: torch exports Shape → Gather → Div for a size that is static
    exported = lm.export_deepspeech_like(use_lengths=True, direction_sum="slice")
    after = onnx_passes.cleanup(_copy(exported))
    before_counts, after_counts = lm.op_counts(exported), lm.op_counts(after)
    assert before_counts["Constant"] > 0 and "Constant" not in after_counts
    assert before_counts["Div"] == 3 and "Div" not in after_counts  # shape arithmetic on a static axis folded
    assert after.graph.value_info  # shape inference ran
    assert lm.max_abs_diff(exported, after, lm.time_major_feeds()) < 1e-6


def test_cleanup_removes_dead_nodes():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["unused"])],
                              "dead", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert lm.op_counts(onnx_passes.cleanup(model)) == {"Relu": 1}


def _cast_chains_model():
    """lengths (int32) cast int32 → int64 → int32 before an Add; x (float) cast float → int32 → float, which
    truncates and must stay; a final Cast to the type it already has that is a graph output."""
    cast = lambda src, dst, to: helper.make_node("Cast", [src], [dst], to=to)  # noqa: E731
    nodes = [cast("n", "n_same", TensorProto.INT32), cast("n_same", "n64", TensorProto.INT64),
             cast("n64", "n32", TensorProto.INT32), helper.make_node("Add", ["n32", "one"], ["m"]),
             cast("x", "xi", TensorProto.INT32), cast("xi", "xf", TensorProto.FLOAT),
             helper.make_node("Neg", ["xf"], ["y"]), cast("m", "out", TensorProto.INT32)]
    graph = helper.make_graph(nodes, "casts", [helper.make_tensor_value_info("n", TensorProto.INT32, [2]),
                                               helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("out", TensorProto.INT32, [2]),
                               helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
                              [numpy_helper.from_array(np.array([1, 1], np.int32), "one")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_cleanup_drops_lossless_cast_chains_and_keeps_truncating_ones():
    model = _cast_chains_model()
    after = onnx_passes.cleanup(_copy(model), fold_constants=False)
    casts = [(n.input[0], n.output[0]) for n in after.graph.node if n.op_type == "Cast"]
    # int32 → int32 → int64 → int32 is gone; the truncating float → int32 → float stays, and so does the Cast
    # that is a graph output
    assert sorted(casts) == [("m", "out"), ("x", "xi"), ("xi", "xf")]
    assert next(n for n in after.graph.node if n.op_type == "Add").input[0] == "n"
    feeds = {"n": np.array([3, -7], np.int32), "x": np.array([1.75, -2.5], np.float32)}
    assert lm.max_abs_diff(model, after, feeds) == 0
    kept = onnx_passes.cleanup(_copy(model), fold_constants=False, simplify_casts=False)
    assert lm.op_counts(kept)["Cast"] == 6


def _conv_bn_model():
    rng = np.random.default_rng(0)
    arrays = {"w": rng.standard_normal((3, 2, 3, 3)), "scale": rng.uniform(.5, 1.5, 3), "shift": rng.normal(0, .3, 3),
              "mean": rng.normal(0, .3, 3), "var": rng.uniform(.5, 1.5, 3)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["conv"], name="conv"),
             helper.make_node("BatchNormalization", ["conv", "scale", "shift", "mean", "var"], ["y"], name="bn")]
    graph = helper.make_graph(nodes, "conv_bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in arrays.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_onnxoptimizer_default_and_bn_fusion_followed_by_folding(exported):
    after = onnx_passes.onnxoptimizer_pass(_copy(exported))
    assert "Identity" not in lm.op_counts(after)
    assert lm.max_abs_diff(exported, after, lm.time_major_feeds()) < 1e-6
    conv_bn = _conv_bn_model()
    fused = onnx_passes.onnxoptimizer_pass(_copy(conv_bn), passes=["fuse_bn_into_conv"])
    assert lm.op_counts(fused) == {"Conv": 1}  # the weight-computing subgraph was folded away
    feeds = {"x": np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32)}
    assert lm.max_abs_diff(conv_bn, fused, feeds) < 1e-5


def test_onnxoptimizer_unknown_pass_is_an_input_error():
    with pytest.raises(InputError, match="unknown onnxoptimizer pass.*fuse_everything.*eliminate_identity"):
        onnx_passes.onnxoptimizer_pass(_conv_bn_model(), passes=["fuse_everything"])


def test_ort_offline_optimize_basic_keeps_standard_ops(exported):
    after = onnx_passes.ort_offline_optimize(_copy(exported))
    assert all(n.domain in ("", "ai.onnx") for n in after.graph.node)
    assert lm.max_abs_diff(exported, after, lm.time_major_feeds()) < 1e-6
    with pytest.raises(InputError, match="level"):
        onnx_passes.ort_offline_optimize(_copy(exported), level="all")


def test_builtin_hooks_register_and_dispatch_by_name(exported):
    specs = onnx_passes.porter_register_passes()
    assert {s.name for s in specs} == {"cleanup", "onnxoptimizer", "ort_offline_optimize"}
    assert onnx_passes.porter_graph_fix(graph_pass=PassConfig("split_bidirectional_lstm", {}, 1e-5),
                                        model=exported) is None
    result = onnx_passes.porter_graph_fix(graph_pass=PassConfig("cleanup", {"fold_constants": False}, 1e-5),
                                          model=_copy(exported))
    assert isinstance(result, onnx.ModelProto) and "Constant" in lm.op_counts(result)


EXPECTED_PASSES = {"fold_batchnorm_into_conv", "fold_batchnorm_into_lstm", "fold_batchnorm_into_matmul",
                   "split_bidirectional_lstm", "direction_sum_to_add", "drop_full_length_sequence_lens",
                   "cancel_transposes", "pad_rnn_to_multiple", "emulate_fp16"}


# a pass's version changes when its output graph does, so cached graph_fix results are redone
EXPECTED_VERSIONS = {"split_bidirectional_lstm": "2"}


def test_registry_specs_match_their_functions():
    assert set(PASSES) == EXPECTED_PASSES
    for name, (spec, fn) in PASSES.items():
        assert isinstance(spec, PassSpec) and spec.name == name and spec.description
        assert spec.version == EXPECTED_VERSIONS.get(name, "1"), name
        parameters = inspect.signature(fn).parameters
        assert set(spec.options) == set(list(parameters)[1:]), name
        for option_name, option in spec.options.items():
            default = parameters[option_name].default
            assert default == option.default or (default is None and option.default == {}), (name, option_name)
    assert PASSES["pad_rnn_to_multiple"][0].options["multiple"].default == 16
    assert PASSES["emulate_fp16"][0].tolerance == 5e-2


def test_every_registered_pass_runs_with_its_spec_defaults(exported):
    feeds = lm.time_major_feeds()
    for name, (spec, fn) in PASSES.items():
        after = fn(_copy(exported), **{k: o.default for k, o in spec.options.items()})
        onnx.checker.check_model(after)
        assert lm.max_abs_diff(exported, after, feeds) <= spec.tolerance, name

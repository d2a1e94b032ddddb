"""emulate_fp16: an fp16-storage estimate on ONNX Runtime that really rounds, within its loose tolerance."""
from __future__ import annotations

import lstm_models as lm
import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from porter_ascend310.passes import PASSES
from porter_ascend310.passes.precision import emulate_fp16


@pytest.fixture(scope="module")
def fixed_model():
    return lm.apply_passes(lm.export_deepspeech_like(use_lengths=True))


def _copy(model):
    return onnx.ModelProto.FromString(model.SerializeToString())


def test_fp16_emulation_rounds_weights_and_activations_within_its_tolerance(fixed_model):
    spec = PASSES["emulate_fp16"][0]
    assert spec.tolerance == 5e-2 and "estimate" in spec.description
    after = emulate_fp16(_copy(fixed_model))
    feeds = lm.time_major_feeds()
    diff = lm.max_abs_diff(fixed_model, after, feeds)
    assert 1e-6 < diff <= spec.tolerance  # it changes the outputs (so it rounds), but not beyond the estimate
    for tensor in after.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT:
            values = numpy_helper.to_array(tensor)
            assert np.array_equal(values, values.astype(np.float16).astype(np.float32)), tensor.name
    casts = [n for n in after.graph.node if n.op_type == "Cast" and
             next(a.i for a in n.attribute if a.name == "to") == TensorProto.FLOAT16]
    float_outputs = sum(1 for n in fixed_model.graph.node for _ in n.output)  # an upper bound
    assert 10 < len(casts) <= float_outputs + len(fixed_model.graph.input)
    assert [o.name for o in after.graph.output] == [o.name for o in fixed_model.graph.output]


def test_weights_only_emulation_changes_less_than_full_emulation(fixed_model):
    feeds = lm.time_major_feeds()
    weights_only = emulate_fp16(_copy(fixed_model), activations=False, inputs=False)
    full = emulate_fp16(_copy(fixed_model))
    assert "Cast" not in {n.op_type for n in weights_only.graph.node} - {n.op_type for n in fixed_model.graph.node}
    weights_diff = lm.max_abs_diff(fixed_model, weights_only, feeds)
    assert 0 < weights_diff < lm.max_abs_diff(fixed_model, full, feeds)


def test_values_beyond_fp16_range_saturate_like_the_device_would():
    from onnx import helper

    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "big",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
                              [numpy_helper.from_array(np.array([1.0, 100.0], np.float32), "k")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    out = lm.run(emulate_fp16(model), {"x": np.array([1.0001, 1000.0], np.float32)})[0]
    assert out[0] == np.float32(np.float16(1.0001)) and np.isinf(out[1])

"""Generic ONNX graph passes for recurrent models on Ascend 310, each proven on ONNX Runtime by the tests.

``PASSES`` maps a pass name to its :class:`porter.specs.PassSpec` and its function
``fn(model: onnx.ModelProto, **options) -> onnx.ModelProto``. The ascend310 plugin registers the specs and
dispatches ``porter_graph_fix`` through this table. The passes work on any ONNX LSTM/GRU/RNN graph; where a
pass cannot prove a rewrite keeps the outputs, it leaves that part of the graph alone.

A typical chain (as a recipe's ``graph_fix``): cleanup, fold_batchnorm_into_lstm, split_bidirectional_lstm,
direction_sum_to_add, cancel_transposes, fold_batchnorm_into_matmul, pad_rnn_to_multiple, cleanup.
"""
from __future__ import annotations

from typing import Callable

from porter.api import Option, PassSpec
from porter_ascend310.passes.alignment import pad_rnn_to_multiple
from porter_ascend310.passes.batchnorm_folding import (
                                                       fold_batchnorm_into_conv,
                                                       fold_batchnorm_into_lstm,
                                                       fold_batchnorm_into_matmul,
)
from porter_ascend310.passes.direction_sum import direction_sum_to_add
from porter_ascend310.passes.precision import emulate_fp16
from porter_ascend310.passes.rnn_split import split_bidirectional_lstm
from porter_ascend310.passes.sequence_lens import drop_full_length_sequence_lens
from porter_ascend310.passes.transposes import cancel_transposes

VERSION = "1"

_SPECS = [
    (PassSpec(
        name="fold_batchnorm_into_lstm",
        description="Fold each inference-mode BatchNormalization whose channels reach an LSTM/GRU/RNN's input "
                    "features (through Reshape/Transpose/Squeeze/Gather, e.g. torch's SequenceWise "
                    "[T,B,C]→[T*B,C]→BN→[T,B,C]) into that node's W and input bias Wb: W·(a⊙x+b) = "
                    "(W·diag(a))·x + W·b. The BatchNormalization and the Reshapes around it are bypassed.",
        version=VERSION, tolerance=1e-4), fold_batchnorm_into_lstm),
    (PassSpec(
        name="fold_batchnorm_into_matmul",
        description="Fold each inference-mode BatchNormalization whose channels reach the contracted axis of a "
                    "MatMul or Gemm with a constant weight (the BatchNorm1d before a final Linear) into that "
                    "weight, plus an Add of W·b (MatMul) or into C (Gemm).",
        version=VERSION, tolerance=1e-4), fold_batchnorm_into_matmul),
    (PassSpec(
        name="fold_batchnorm_into_conv",
        description="Fold each inference-mode BatchNormalization into the Conv before it, also across masking "
                    "Where(cond, v, x) nodes (DeepSpeech's MaskConv): the Conv's weights and bias absorb a*y+b "
                    "and each mask constant v becomes the per-channel a*v+b. Skipped where the Conv's or a "
                    "mask's output has other readers or a mask broadcasts the data to a larger shape.",
        version=VERSION, tolerance=1e-4), fold_batchnorm_into_conv),
    (PassSpec(
        name="split_bidirectional_lstm",
        description="Replace each bidirectional LSTM/GRU/RNN by two forward nodes (direction 0 and 1 slices of "
                    "W/R/B/P/initial states); the second reads the time-reversed input and its Y is reversed back; "
                    "Y = Concat axis 1, Y_h/Y_c = Concat axis 0. With sequence_lens, reversal is ReverseSequence "
                    "within each length and both nodes get the lengths. Batch-first (layout=1) nodes are made "
                    "time-major with Transposes.",
        options={"include_reverse": Option("bool", True, help="also turn direction=reverse nodes into forward "
                                                              "nodes on reversed input")},
        # 2: records which half of Y each direction's output is (porter debug's provenance)
        version="2", tolerance=1e-5), split_bidirectional_lstm),
    (PassSpec(
        name="direction_sum_to_add",
        description="Replace a sum over a bidirectional RNN's direction axis (Reshape [T,B,2,H] + ReduceSum, or "
                    "Slice + Add of the two halves), proven axis by axis, by Add of the two direction outputs "
                    "after split_bidirectional_lstm (or ReduceSum over axis 1 of an unsplit node's Y).",
        version=VERSION, tolerance=1e-5), direction_sum_to_add),
    (PassSpec(
        name="drop_full_length_sequence_lens",
        description="Remove sequence_lens from RNN nodes (and turn ReverseSequence into a plain reversal) only "
                    "where every length provably equals the static time length T: the lengths are a constant "
                    "equal to T, or are computed solely from inputs that full_length_inputs asserts hold full "
                    "lengths (and static shapes), evaluated once and compared with T. Dynamic shapes: no change. "
                    "The assertion is the user's; shorter sequences then give wrong results.",
        options={"full_length_inputs": Option(
            "dict", {}, help="length input → 'input:axis' whose size every length equals, e.g. "
                             "{lengths: 'features:0'}")},
        version=VERSION, tolerance=1e-5), drop_full_length_sequence_lens),
    (PassSpec(
        name="cancel_transposes",
        description="Compose consecutive Transposes into one and remove Transposes whose permutation is the "
                    "identity (pairs that undo each other vanish).",
        version=VERSION, tolerance=1e-5), cancel_transposes),
    (PassSpec(
        name="pad_rnn_to_multiple",
        description="Pad LSTM/GRU/RNN hidden sizes (and input sizes) to a multiple with zero weights and zero "
                    "initial states, so the extra units stay exactly zero; outputs are sliced back, and the "
                    "slice is absorbed into the next RNN's or MatMul's weights (zero columns/rows) where it can.",
        options={"multiple": Option("int", 16, min=1, max=4096, help="size multiple (16: Ascend fp16 cube)"),
                 "pad_input": Option("bool", True, help="also pad input sizes, with a zero Pad of X")},
        version=VERSION, tolerance=1e-5), pad_rnn_to_multiple),
    (PassSpec(
        name="emulate_fp16",
        description="Precision preview (an estimate): round float weights to fp16 and pass every float "
                    "activation through Cast(fp16)→Cast(fp32), so ONNX Runtime on the CPU estimates what fp16 "
                    "storage (atc precision_mode=force_fp16) does to the outputs. Not equivalent to the device.",
        options={"activations": Option("bool", True, help="round activations, not just weights"),
                 "inputs": Option("bool", True, help="round float graph inputs too"),
                 "keep_dtype": Option("path", help="keep-list in atc's --keep_dtype format (node names, or "
                                                   "OpType::Type lines): those nodes stay fp32, as atc keeps them"),
                 "format": Option("str", "fp16", ("fp16", "bf16"),
                                  help="fp16 (Ascend 310) or bf16 (the bf16 precision modes of newer chips)")},
        version=VERSION, tolerance=5e-2, estimate=True), emulate_fp16),
]

PASSES: dict[str, tuple[PassSpec, Callable]] = {spec.name: (spec, fn) for spec, fn in _SPECS}

__all__ = ["PASSES"]

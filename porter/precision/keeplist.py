"""A keep-list: the nodes (by name) or op types that stay in fp32 while the rest of a model is reduced.

Its file form is atc's ``--keep_dtype`` file (CANN ATC parameter reference, ``--keep_dtype``): one entry per
line, an operator name, or ``OpType::TypeName`` for every operator of an (Ascend IR) type. porter uses the same
file for every consumer of a keep-list — the CPU precision preview, ONNX Runtime's int8 quantisation, atc — so
the list a search proves on the CPU is byte for byte the list the device compiler gets.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from porter.errors import InputError

OP_TYPE_PREFIX = "OpType::"

# The Ascend IR operator types atc turns common ONNX operators into (CANN's ONNX operator mapping tables);
# atc's OpType:: entries and modify_mixlist name these, not the ONNX types. Types not listed keep their name.
ASCEND_IR_TYPES = {
    "Conv": "Conv2D", "ConvTranspose": "Conv2DTranspose", "MatMul": "MatMulV2", "Gemm": "MatMulV2",
    "LSTM": "DynamicRNN", "GRU": "DynamicGRUV2", "RNN": "DynamicRNN", "BatchNormalization": "BatchNorm",
    "Softmax": "SoftmaxV2", "LogSoftmax": "LogSoftmaxV2", "Clip": "ClipByValue", "ReduceSum": "ReduceSumD",
    "ReduceMean": "ReduceMeanD", "Gelu": "Gelu", "LayerNormalization": "LayerNorm",
}


def ascend_ir_type(onnx_op_type: str) -> str:
    return ASCEND_IR_TYPES.get(onnx_op_type, onnx_op_type)


@dataclass(frozen=True)
class KeepList:
    names: tuple[str, ...] = ()
    op_types: tuple[str, ...] = ()  # as written after OpType:: (Ascend IR or ONNX type names)

    def keeps(self, node_name: str, onnx_op_type: str) -> bool:
        return (node_name in self.names or onnx_op_type in self.op_types
                or ascend_ir_type(onnx_op_type) in self.op_types)

    def __len__(self) -> int:
        return len(self.names) + len(self.op_types)

    def text(self) -> str:
        """The keep_dtype file's content."""
        lines = [*self.names, *(OP_TYPE_PREFIX + t for t in self.op_types)]
        return "".join(line + "\n" for line in lines)


def parse_keep_dtype(text: str, *, file=None) -> KeepList:
    names: list[str] = []
    types: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(OP_TYPE_PREFIX):
            op_type = line[len(OP_TYPE_PREFIX):].strip()
            if not op_type:
                raise InputError(f"line {number} is {raw!r}; expected OpType::TypeName", file=file)
            types.append(op_type)
        else:
            names.append(line)
    return KeepList(tuple(dict.fromkeys(names)), tuple(dict.fromkeys(types)))


def read_keep_dtype(path: Path | str) -> KeepList:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the keep-list ({error}); expected a text file of operator names, one a "
                         "line, or OpType::TypeName lines", file=path) from None
    return parse_keep_dtype(text, file=path)

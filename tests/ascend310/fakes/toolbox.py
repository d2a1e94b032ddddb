"""Test helpers for the ascend310 toolchain tests: fake tools on PATH, a tiny two-input ONNX model, inputs.

The fake tools are TEST DOUBLES (fake_atc.py, fake_aoe.py, fake_msame.py, fake_ais_bench.py in this folder);
``install`` puts them on PATH under the real tool names through small wrapper scripts.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from porter.artifacts import InputSet, OnnxModel, TensorSpec, write_sample
from porter.specs import TargetConfig

FAKES = Path(__file__).resolve().parent
SYSTEM_PATH = "/usr/bin:/bin"
ARGV_LOG_VARIABLE = "FAKE_ASCEND_ARGV_LOG"
FAIL_VARIABLE = "FAKE_ASCEND_FAIL"
FEATURES, CLASSES, FRAMES = 4, 3, 6


@dataclass
class FakeTools:
    root: Path
    bin: Path
    pylib: Path
    argv_log: Path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PATH=f"{self.bin}:{SYSTEM_PATH}", PYTHONPATH=str(self.pylib),
                   **{ARGV_LOG_VARIABLE: str(self.argv_log)})
        return env

    def calls(self, tool: str | None = None) -> list[list[str]]:
        records = json.loads(self.argv_log.read_text()) if self.argv_log.is_file() else []
        return [r["argv"] for r in records if tool is None or r["tool"] == tool]


def _wrapper(path: Path, argv: list[str]) -> None:
    path.write_text("#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in argv) + ' "$@"\n')
    path.chmod(0o755)


def install(root: Path, monkeypatch, tools=("atc", "aoe", "msame", "ais_bench")) -> FakeTools:
    """Put the named fakes on PATH (and ais_bench on PYTHONPATH); no real toolkit home is visible."""
    fake = FakeTools(root=root, bin=root / "bin", pylib=root / "pylib", argv_log=root / "argv.json")
    fake.bin.mkdir(parents=True, exist_ok=True)
    fake.pylib.mkdir(parents=True, exist_ok=True)
    _wrapper(fake.bin / "python3", [sys.executable])
    for tool in tools:
        if tool == "ais_bench":
            package = fake.pylib / "ais_bench"
            package.mkdir(exist_ok=True)
            (package / "__init__.py").write_text('"""fake ais_bench package for tests (a TEST DOUBLE)."""\n')
            (package / "__main__.py").write_text(
                "import runpy, sys\nsys.argv[0] = 'ais_bench'\n"
                f"runpy.run_path({str(FAKES / 'fake_ais_bench.py')!r}, run_name='__main__')\n")
        else:
            _wrapper(fake.bin / tool, [sys.executable, str(FAKES / f"fake_{tool}.py")])
    monkeypatch.setenv("PATH", f"{fake.bin}:{SYSTEM_PATH}")
    monkeypatch.setenv("PYTHONPATH", str(fake.pylib))
    monkeypatch.setenv(ARGV_LOG_VARIABLE, str(fake.argv_log))
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(root / "no-toolkit-here"))
    monkeypatch.delenv("ASCEND_HOME_PATH", raising=False)
    monkeypatch.delenv(FAIL_VARIABLE, raising=False)
    return fake


def no_tools(root: Path, monkeypatch) -> FakeTools:
    """A PATH with no Ascend tool at all."""
    return install(root, monkeypatch, tools=())


# ---------------------------------------------------------------------------------------------------------
# A tiny ONNX model shaped like DeepSpeech's interface: spect [B,1,F,T] + lengths [B] → probs [B,T,C] + lengths
# ---------------------------------------------------------------------------------------------------------


def tiny_onnx(path: Path, *, batch="batch", frames=FRAMES, seed=0) -> OnnxModel:
    """``batch`` / ``frames``: an int for a static dim, a string for a named dynamic one."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((FEATURES, CLASSES)).astype(np.float32)
    nodes = [
        helper.make_node("Reshape", ["spect", "shape3"], ["flat"]),
        helper.make_node("Transpose", ["flat"], ["time_major"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["time_major", "weight"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        helper.make_node("Add", ["lengths", "one"], ["out_lengths"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_speech",
        [helper.make_tensor_value_info("spect", TensorProto.FLOAT, [batch, 1, FEATURES, frames]),
         helper.make_tensor_value_info("lengths", TensorProto.INT32, [batch])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, frames, CLASSES]),
         helper.make_tensor_value_info("out_lengths", TensorProto.INT32, [batch])],
        initializer=[helper.make_tensor("shape3", TensorProto.INT64, [3], [0, FEATURES, -1]),
                     helper.make_tensor("weight", TensorProto.FLOAT, [FEATURES, CLASSES], weight.ravel()),
                     helper.make_tensor("one", TensorProto.INT32, [], [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return OnnxModel(
        path=path,
        inputs=(TensorSpec("spect", (batch, 1, FEATURES, frames), "float32"), TensorSpec("lengths", (batch,), "int32")),
        outputs=(TensorSpec("probs", (batch, frames, CLASSES), "float32"),
                 TensorSpec("out_lengths", (batch,), "int32")),
        opset=13)


def tiny_inputs(root: Path, lengths=(6, 4, 5), seed=1) -> InputSet:
    """Samples at their natural lengths (batch 1); lengths stored as int64, as a front end might."""
    rng = np.random.default_rng(seed)
    for index, frames in enumerate(lengths):
        write_sample(root, index, {"spect": rng.standard_normal((1, 1, FEATURES, frames)).astype(np.float32),
                                   "lengths": np.array([frames], dtype=np.int64)})
    ids = tuple(f"utt{i}" for i in range(len(lengths)))
    return InputSet(path=root, sample_ids=ids, input_names=("spect", "lengths"), references=ids)


def direct_outputs(onnx_path: Path, inputs: InputSet, frames: int = FRAMES) -> list[dict[str, np.ndarray]]:
    """ONNX Runtime on the same zero-padded inputs the runners feed: what the device should reproduce."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    results = []
    for sample in inputs:
        spect = np.zeros((1, 1, FEATURES, frames), np.float32)
        spect[..., :sample["spect"].shape[-1]] = sample["spect"]
        outs = session.run(None, {"spect": spect, "lengths": sample["lengths"].astype(np.int32)})
        results.append({"probs": outs[0], "out_lengths": outs[1]})
    return results


def target(**flags) -> TargetConfig:
    return TargetConfig(name="ascend310", flags=flags)

"""msame (Ascend/tools, msame/src): its command line, where it writes, and how it reports time.

Read from its sources: outputs go to a new timestamp folder under --output as ``<input stem>_output_<k>``
(.txt for --outfmt TXT, .bin for anything else); each output file is the whole output buffer, which ACL sizes
for the LARGEST profile (aclmdlGetOutputSizeByIndex) and msame shrinks only for --dymBatch, so under --dymHW or
--dymDims the output is the first prod(shape) values of a longer file; TXT writes int8/uint8 values with
``ostream <<``, i.e. as raw characters; --input is taken as folders only when its first path holds no ".bin";
it prints ``Inference time: Xms`` per file and ``Inference average time : X ms``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from porter.api import Timing
from porter_ascend310.runner_base import OutputFormatError, Runner, RunnerInputError

_PROCESS_FILE = re.compile(r"start to process file\s*:?\s*(\S+)")
_INFERENCE_TIME = re.compile(r"^\s*Inference time\s*:\s*([0-9.eE+-]+)\s*ms", re.MULTILINE)
_AVERAGE = re.compile(r"Inference average time\s*:\s*([0-9.eE+-]+)\s*ms")
_AVERAGE_AFTER_FIRST = re.compile(r"Inference average time without first time\s*:\s*([0-9.eE+-]+)\s*ms")
# msame's --outfmt TXT streams these dtypes as characters, not numbers
TXT_UNREADABLE = ("int8", "uint8")


class Msame(Runner):
    name = "msame"
    outfmts = ("BIN", "TXT")
    script_variable = "MSAME"
    script_default = "msame"
    how_to_install = ("build msame from Ascend's tools repository (it lands in tools/msame/out/) and put it on "
                      "PATH, or give its path to the bundle's run.sh as MSAME=...")

    def check_layout_impl(self, layout) -> list[str]:
        if layout.outfmt == "TXT":
            unreadable = [s.name for s in layout.outputs if np.dtype(s.dtype).name in TXT_UNREADABLE]
            if unreadable:
                raise RunnerInputError(
                    f"msame --outfmt TXT writes int8/uint8 outputs as raw characters, not numbers (output "
                    f"{', '.join(unreadable)}): use outfmt BIN")
        return []

    def argv_impl(self, om: str, input_dirs: Sequence[str], output: str, layout) -> list[str]:
        argv = ["--model", om, "--input", ",".join(input_dirs), "--output", output, "--outfmt", layout.outfmt]
        if layout.device is not None:
            argv += ["--device", str(layout.device)]
        return argv + list(layout.dynamic_args)

    def path_problem_impl(self, om, input_dirs, output, cwd) -> str | None:
        if input_dirs and ".bin" in input_dirs[0]:
            return (f"msame takes --input as files, not folders, when its first path holds '.bin' "
                    f"({input_dirs[0]!r}); porter's input folders must not")
        return None

    def output_file_name_impl(self, stem: str, index: int, ext: str) -> str:
        return f"{stem}_output_{index}.{'txt' if ext == 'txt' else 'bin'}"

    def find_result_dir_impl(self, layout, output_dir: Path) -> Path:
        first = self.output_file_names(layout, layout.stems[0])[0] if layout.stems else None
        folders = [d for d in output_dir.iterdir() if d.is_dir()] if output_dir.is_dir() else []
        folders = [d for d in folders if first is None or (d / first).is_file()]
        if not folders:
            raise OutputFormatError(f"{output_dir}: no msame result folder holding {first}; msame has not run "
                                    "here")
        return max(folders, key=lambda d: (d.stat().st_mtime, d.name))

    def files_may_be_longer_impl(self, layout) -> bool:
        return any(arg in ("--dymHW", "--dymDims") for arg in layout.dynamic_args)

    def read_timing_impl(self, layout, output_dir: Path) -> tuple[Timing, dict]:
        log = output_dir / self.log_name()
        text = log.read_text(errors="replace") if log.is_file() else ""
        return parse_msame_log(text, layout.stems)


def parse_msame_log(text: str, stems: Sequence[str]) -> tuple[Timing, dict]:
    """Per-file inference times (ms) from msame's printout, ordered like ``stems``."""
    per_file: dict[str, float] = {}
    ordered: list[float] = []
    current = None
    for line in text.splitlines():
        started = _PROCESS_FILE.search(line)
        if started:
            current = Path(started.group(1)).name.split(".")[0]
            continue
        timed = _INFERENCE_TIME.match(line)
        if timed:
            value = float(timed.group(1))
            ordered.append(value)
            if current is not None:
                per_file[current] = value
                current = None
    if per_file and all(stem in per_file for stem in stems):
        latencies = [per_file[stem] for stem in stems]
    else:
        latencies = ordered
    details: dict[str, Any] = {"timing_source": "msame per-file 'Inference time'"}
    average = _AVERAGE.search(text)
    after_first = _AVERAGE_AFTER_FIRST.search(text)
    if average:
        details["msame_average_ms"] = float(average.group(1))
    if after_first:
        details["msame_average_without_first_ms"] = float(after_first.group(1))
    if not latencies and average:
        latencies = [float(average.group(1))]
        details["timing_source"] = "msame average only (no per-file times printed)"
    if not latencies:
        details["timing_source"] = "msame printed no inference times"
    timing = Timing(latencies_ms=tuple(latencies), wall_seconds=sum(latencies) / 1000.0, warmup=0, batch_size=1)
    return timing, details


__all__ = ["Msame", "parse_msame_log"]

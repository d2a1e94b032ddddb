"""What every device runner (msame, ais_bench) does the same way, and the checks around what each does its own way.

A runner is one class (msame.py, ais_bench.py). Its public methods here do the checks every caller needs —
the layout it can write, the paths it accepts, the files it left — and call the ``*_impl`` methods the tool's
class overrides with what that tool's source does. Nothing else branches on a runner's name.
"""
from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from porter.api import InputError, PorterError, TensorSpec, Timing

if TYPE_CHECKING:
    from porter_ascend310.runners import RunLayout

FLAG_FIELD = "target.flags"


class OutputFormatError(PorterError):
    """Files a runner wrote do not match the compiled model's outputs."""


class RunnerInputError(PorterError):
    """A run porter cannot hand to the runner as configured (its files or paths would be refused or misread)."""


@dataclass(frozen=True)
class RunResult:
    samples: list[dict[str, np.ndarray]]
    timing: Timing
    details: dict = field(default_factory=dict)


class Runner:
    """One device runner. Subclasses set the class attributes and override the ``*_impl`` methods."""

    name = ""
    outfmts: tuple[str, ...] = ()
    # flags only this runner takes (ais_bench's warm-up and loop)
    own_flags: frozenset = frozenset()
    # the argv prefix a bundle's run.sh uses, and the variable that overrides it there
    script_variable = ""
    script_default = ""
    how_to_install = ""

    # ------------------------------------------------------------------------------------------------
    # settings and layout

    def check_settings(self, outfmt: str, numbers: dict[str, int | None]) -> None:
        if outfmt not in self.outfmts:
            raise InputError(f"is {outfmt!r}; {self.name} writes {'|'.join(self.outfmts)}",
                             field=f"{FLAG_FIELD}.outfmt")
        foreign = [n for n in ("warmup_count", "loop") if numbers.get(n) is not None and n not in self.own_flags]
        if foreign:
            raise InputError(f"is an ais_bench option; {self.name} does not take it",
                             field=f"{FLAG_FIELD}.{foreign[0]}")

    def check_layout(self, layout: RunLayout) -> list[str]:
        """Refuse a layout whose outputs this runner would write unreadably; returns warnings for lossy ones."""
        return self.check_layout_impl(layout)

    def check_layout_impl(self, layout: RunLayout) -> list[str]:
        return []

    # ------------------------------------------------------------------------------------------------
    # command line

    def argv(self, command: Sequence[str], om: str, input_dirs: Sequence[str], output: str,
             layout: RunLayout, *, cwd: Path | None = None) -> list[str]:
        """The runner's argument list; the paths (relative to ``cwd``, where the tool will run) are checked
        against what the tool accepts first."""
        self.check_paths(om, input_dirs, output, cwd=cwd)
        return [*command, *self.argv_impl(om, input_dirs, output, layout)]

    def argv_impl(self, om: str, input_dirs: Sequence[str], output: str, layout: RunLayout) -> list[str]:
        raise NotImplementedError

    def check_paths(self, om: str, input_dirs: Sequence[str], output: str, *, cwd: Path | None = None) -> None:
        """Raise RunnerInputError naming the first path the tool would refuse or misread."""
        problem = self.path_problem_impl(om, list(input_dirs), output, cwd)
        if problem:
            raise RunnerInputError(problem)

    def path_problem_impl(self, om: str, input_dirs: list[str], output: str, cwd: Path | None) -> str | None:
        return None

    # ------------------------------------------------------------------------------------------------
    # what it wrote

    def output_file_names(self, layout: RunLayout, stem: str) -> list[str]:
        return [self.output_file_name_impl(stem, k, layout.outfmt.lower()) for k in range(len(layout.outputs))]

    def output_file_name_impl(self, stem: str, index: int, ext: str) -> str:
        raise NotImplementedError

    def find_result_dir(self, layout: RunLayout, output_dir: Path) -> Path:
        """Where the runner put its output files."""
        return self.find_result_dir_impl(layout, output_dir)

    def find_result_dir_impl(self, layout: RunLayout, output_dir: Path) -> Path:
        raise NotImplementedError

    def has_outputs(self, layout: RunLayout, output_dir: Path) -> bool:
        """True when a finished run's files for every sample are in ``output_dir``."""
        try:
            result_dir = self.find_result_dir(layout, output_dir)
        except OutputFormatError:
            return False
        return all((result_dir / name).is_file() for stem in layout.stems
                   for name in self.output_file_names(layout, stem))

    def read_outputs(self, layout: RunLayout, output_dir: Path) -> list[dict[str, np.ndarray]]:
        """Every sample's outputs, in InputSet order, shaped and typed as the compiled model gives them."""
        result_dir = self.find_result_dir(layout, output_dir)
        longer = self.files_may_be_longer_impl(layout)
        samples = []
        for stem in layout.stems:
            names = self.output_file_names(layout, stem)
            samples.append({spec.name: read_array(result_dir / name, spec, layout.outfmt, longer)
                            for spec, name in zip(layout.outputs, names)})
        return samples

    def files_may_be_longer_impl(self, layout: RunLayout) -> bool:
        """True where the tool writes whole buffers sized for a larger profile than the one that ran."""
        return False

    def log_name(self) -> str:
        return f"{self.name}.log"

    def read_timing(self, layout: RunLayout, output_dir: Path) -> tuple[Timing, dict]:
        return self.read_timing_impl(layout, output_dir)

    def read_timing_impl(self, layout: RunLayout, output_dir: Path) -> tuple[Timing, dict]:
        raise NotImplementedError

    def collect(self, layout: RunLayout, output_dir: Path) -> RunResult:
        """Outputs and timing of one finished run, from the files the runner left in ``output_dir``."""
        samples = self.read_outputs(layout, output_dir)
        timing, details = self.read_timing(layout, output_dir)
        return RunResult(samples=samples, timing=timing, details=details)


def read_array(path: Path, spec: TensorSpec, fmt: str, longer: bool = False) -> np.ndarray:
    """One output file as ``spec`` says; with ``longer`` the file may hold more values than the shape (a buffer
    sized for a larger profile) and its first prod(shape) values are the output."""
    if not path.is_file():
        raise OutputFormatError(f"{path}: missing; expected output {spec.name!r} here")
    expected = math.prod(spec.shape)
    if fmt == "NPY":
        array = np.load(path, allow_pickle=False)
        if array.size != expected:
            raise OutputFormatError(f"{path}: output {spec.name!r} has shape {array.shape}; the compiled model "
                                    f"gives {spec.shape}")
        return array.reshape(spec.shape)
    dtype = np.dtype(spec.dtype)
    if fmt == "BIN":
        flat = np.fromfile(path, dtype=dtype)
    else:
        text = path.read_text(errors="replace").split()
        try:
            flat = np.array([float(v) for v in text], dtype=np.float64).astype(dtype)
        except ValueError as error:
            raise OutputFormatError(
                f"{path}: output {spec.name!r} is not whitespace-separated numbers: {error}") from None
    if flat.size != expected and not (longer and flat.size > expected):
        raise OutputFormatError(f"{path}: output {spec.name!r} holds {flat.size} {dtype.name} values; expected "
                                f"{expected} for shape {spec.shape}")
    return flat[:expected].reshape(spec.shape)


# ais_bench (msit, path_security_check.py): path strings hold only these characters, at most 4096 of them and
# 255 per component; the files it reads and the folder it writes may not be group- or other-writable.
AIS_BENCH_PATH_CHARACTERS = re.compile(r"[^_A-Za-z0-9/.-]")
AIS_BENCH_PATH_LIMIT = 4096
AIS_BENCH_NAME_LIMIT = 255


def ais_bench_path_problem(path: str, what: str, cwd: Path | None = None) -> str | None:
    """Why ais_bench would refuse ``path`` (its text, and where it exists its permissions), or None."""
    bad = AIS_BENCH_PATH_CHARACTERS.search(path)
    if bad:
        return (f"{what} {path!r} holds {bad.group(0)!r}; ais_bench refuses paths with characters outside "
                "A-Z a-z 0-9 _ - / .: move the folder or rename it")
    if len(path) > AIS_BENCH_PATH_LIMIT or any(len(part) > AIS_BENCH_NAME_LIMIT for part in path.split("/")):
        return f"{what} {path!r} is longer than ais_bench accepts ({AIS_BENCH_PATH_LIMIT} characters, " \
               f"{AIS_BENCH_NAME_LIMIT} per name)"
    where = Path(path) if cwd is None or os.path.isabs(path) else cwd / path
    if where.is_symlink():
        return f"{what} {path!r} is a symbolic link, which ais_bench refuses"
    if where.exists() and stat.S_IMODE(where.stat().st_mode) & (stat.S_IWGRP | stat.S_IWOTH):
        return (f"{what} {path!r} is group- or other-writable (mode {stat.S_IMODE(where.stat().st_mode):o}), "
                "which ais_bench refuses: chmod go-w it (or run with umask 022)")
    return None


__all__ = ["Runner", "RunResult", "OutputFormatError", "RunnerInputError", "read_array",
           "ais_bench_path_problem", "AIS_BENCH_PATH_CHARACTERS"]

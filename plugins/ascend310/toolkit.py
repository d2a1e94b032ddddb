"""Finding the Ascend toolchain (atc, aoe, msame, ais_bench) and the CANN version, and running its tools.

Tools are looked up on PATH first, then in the bin folders of the toolkit home: ``$ASCEND_TOOLKIT_HOME``
(set by CANN's ``set_env.sh``), ``$ASCEND_HOME_PATH`` (newer set_env.sh) and the standard install path. msame is
not part of CANN (it is built from Ascend's tools repository), so only PATH and a ``tools/msame`` folder are
searched for it. ais_bench is a Python package run as ``python3 -m ais_bench``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from porter.api import PorterError, ToolMissingError

DEFAULT_TOOLKIT_HOME = Path("/usr/local/Ascend/ascend-toolkit/latest")
TOOLKIT_HOME_VARIABLES = ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH")
# Where the CANN layouts of 5.x–8.x keep their executables, relative to the toolkit home.
TOOLKIT_BIN_DIRS = ("bin", "compiler/bin", "atc/bin", "tools/aoe/bin", "tools/msame/out", "tools/msame")
# Files that name the installed CANN version, newest layout first; each holds a "version=..." line.
VERSION_FILES = ("*-linux/ascend_toolkit_install.info", "compiler/version.info", "atc/version.info",
                 "fwkacllib/version.info", "runtime/version.info", "version.info", "version.cfg")
BUNDLE_HINT = ("to prepare everything for an Ascend host instead, write a bundle: "
               "`porter run RECIPE --bundle DIR` (or set the target flag bundle_dir), run `bash DIR/run.sh` "
               "on the host, copy DIR back and run `porter score DIR`")
TOOL_NAMES = ("atc", "aoe", "msame", "ais_bench")
STDERR_TAIL_LINES = 20


class ToolFailedError(PorterError):
    """A toolchain program ran and exited with a non-zero status."""


@dataclass(frozen=True)
class Toolkit:
    """What this machine has of the Ascend toolchain; ``None`` marks a tool that was not found."""

    homes: tuple[Path, ...]
    atc: Path | None = None
    aoe: Path | None = None
    msame: Path | None = None
    # argv prefix that runs ais_bench, e.g. ("/usr/bin/python3", "-m", "ais_bench")
    ais_bench: tuple[str, ...] | None = None
    ais_bench_version: str | None = None
    cann_version: str | None = None
    searched: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def has(self, tool: str) -> bool:
        return getattr(self, tool) is not None

    def command(self, tool: str) -> list[str]:
        """The argv prefix that runs ``tool``; raises ToolMissingError when it is not installed."""
        found = getattr(self, tool)
        if found is None:
            raise ToolMissingError(self.missing_message(tool))
        return list(found) if isinstance(found, tuple) else [str(found)]

    def missing_message(self, tool: str) -> str:
        from porter_ascend310.runners import RUNNERS

        looked = "; ".join(self.searched.get(tool, ())) or "PATH"
        runner = RUNNERS.get(tool)
        how = runner.how_to_install if runner is not None else (
            f"install the CANN toolkit and `source <toolkit home>/set_env.sh` so that {tool} is on PATH")
        return f"{tool} not found; porter looked in: {looked}. To run here, {how}; {BUNDLE_HINT}."

    def versions(self) -> dict[str, str]:
        """Tool name → version or location text, or "not found"."""
        cann = f"CANN {self.cann_version}" if self.cann_version else "CANN version unknown"
        result = {}
        for tool in ("atc", "aoe"):
            path = getattr(self, tool)
            result[tool] = f"{cann} ({path})" if path else "not found"
        result["msame"] = f"found at {self.msame} (msame prints no version)" if self.msame else "not found"
        if self.ais_bench:
            result["ais_bench"] = f"{self.ais_bench_version or 'version unknown'} ({' '.join(self.ais_bench)})"
        else:
            result["ais_bench"] = "not found"
        return result


def toolkit_homes(env: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """Candidate toolkit homes, in search order, without duplicates."""
    env = os.environ if env is None else env
    homes: list[Path] = []
    for variable in TOOLKIT_HOME_VARIABLES:
        if env.get(variable):
            homes.append(Path(env[variable]))
    homes.append(DEFAULT_TOOLKIT_HOME)
    unique: list[Path] = []
    for home in homes:
        if home not in unique:
            unique.append(home)
    return tuple(unique)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_executable(name: str, homes: Sequence[Path], env: Mapping[str, str]) -> tuple[Path | None, tuple[str, ...]]:
    """``name`` on PATH or in a toolkit bin folder; also returns the places searched (for messages)."""
    searched = ["PATH"]
    on_path = shutil.which(name, path=env.get("PATH", os.defpath))
    if on_path:
        return Path(on_path), tuple(searched)
    for home in homes:
        for sub in TOOLKIT_BIN_DIRS:
            candidate = home / sub / name
            searched.append(str(candidate.parent))
            if _executable(candidate):
                return candidate, tuple(searched)
    return None, tuple(searched)


_AIS_BENCH_PROBE = (
    "import importlib.util, sys\n"
    "if importlib.util.find_spec('ais_bench') is None: sys.exit(3)\n"
    "try:\n"
    "    from importlib.metadata import version\n"
    "    print(version('ais_bench'))\n"
    "except Exception:\n"
    "    print('')\n"
)


def find_ais_bench(env: Mapping[str, str]) -> tuple[tuple[str, ...] | None, str | None, tuple[str, ...]]:
    """A Python interpreter that can ``import ais_bench``: this one, then python3 on PATH."""
    pythons: list[str] = []
    for candidate in (sys.executable, shutil.which("python3", path=env.get("PATH", os.defpath))):
        if candidate and candidate not in pythons:
            pythons.append(candidate)
    searched = tuple(f"`{python} -m ais_bench`" for python in pythons)
    for python in pythons:
        try:
            probe = subprocess.run([python, "-c", _AIS_BENCH_PROBE], env=dict(env), capture_output=True,
                                   text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            version = probe.stdout.strip() or None
            return (python, "-m", "ais_bench"), version, searched
    return None, None, searched


def read_cann_version(home: Path) -> str | None:
    """The CANN version named by the first version file under ``home``, e.g. "5.1.RC2"."""
    for pattern in VERSION_FILES:
        for path in sorted(home.glob(pattern)):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            match = re.search(r"^\s*version\s*=\s*(\S+)", text, flags=re.IGNORECASE | re.MULTILINE)
            if match:
                return match.group(1).strip().strip('"')
    return None


def parse_cann_version(text: str) -> tuple[int, int]:
    """(major, minor) of a CANN version string: "5.1.RC2" → (5, 1), "5.0.4.alpha005" → (5, 0)."""
    match = re.match(r"\s*(\d+)\.(\d+)", str(text))
    if not match:
        raise ValueError(f"not a CANN version: {text!r} (expected e.g. 5.0.4, 5.1.RC2, 7.0.0)")
    return int(match.group(1)), int(match.group(2))


def _home_of(tool: Path, homes: Sequence[Path]) -> Path | None:
    """The toolkit home a tool found on PATH belongs to (its version file lies a few levels up)."""
    for parent in [*list(tool.parents)[:4], *list(tool.resolve().parents)[:4]]:
        if read_cann_version(parent):
            return parent
    for home in homes:
        if home.is_dir():
            return home
    return None


def find_toolkit(env: Mapping[str, str] | None = None) -> Toolkit:
    """Look for every tool and the CANN version; finds what exists, never raises for what is missing."""
    env = dict(os.environ if env is None else env)
    homes = toolkit_homes(env)
    searched: dict[str, tuple[str, ...]] = {}
    found: dict[str, Path | None] = {}
    for tool in ("atc", "aoe", "msame"):
        found[tool], searched[tool] = find_executable(tool, homes, env)
    ais_bench, ais_version, searched["ais_bench"] = find_ais_bench(env)
    version = None
    compiler = found["atc"] or found["aoe"]
    if compiler is not None:
        home = _home_of(compiler, homes)
        version = read_cann_version(home) if home else None
    if version is None:
        version = next((v for v in map(read_cann_version, (h for h in homes if h.is_dir())) if v), None)
    return Toolkit(homes=homes, atc=found["atc"], aoe=found["aoe"], msame=found["msame"], ais_bench=ais_bench,
                   ais_bench_version=ais_version, cann_version=version, searched=searched)


def tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    kept = [line for line in (text or "").splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def run_tool(argv: Sequence[str], *, tool: str, cwd: Path | None = None,
             env: Mapping[str, str] | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run one toolchain command (an argument list, never a shell string); non-zero exit → ToolFailedError."""
    try:
        done = subprocess.run([str(a) for a in argv], cwd=cwd, env=None if env is None else dict(env),
                              capture_output=True, text=True, errors="replace", timeout=timeout)
    except FileNotFoundError as error:
        raise ToolMissingError(f"{tool}: cannot execute {argv[0]}: {error}") from error
    except subprocess.TimeoutExpired as error:
        raise ToolFailedError(f"{tool} did not finish within {timeout:g} s: {' '.join(map(str, argv))}") from error
    if done.returncode != 0:
        stderr_tail = tail(done.stderr) or tail(done.stdout) or "(no output)"
        raise ToolFailedError(
            f"{tool} exited with status {done.returncode}: {' '.join(map(str, argv))}\n"
            f"--- last lines of its output ---\n{stderr_tail}")
    return done


__all__ = [
    "Toolkit", "ToolFailedError", "find_toolkit", "toolkit_homes", "find_executable", "find_ais_bench",
    "read_cann_version", "parse_cann_version", "run_tool", "tail", "DEFAULT_TOOLKIT_HOME", "TOOL_NAMES",
]

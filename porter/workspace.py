"""A content-addressed artifact store.

Each stage's output lives in ``<root>/artifacts/<stage>/<key>/`` with an ``artifact.json`` describing the
typed object the stage returned. A stage writes into a fresh temporary directory next to its final place and the
directory is renamed into place only after ``artifact.json`` is fsync'ed, so an interrupted stage leaves nothing a
later run would trust. A lock file per key makes concurrent runs of the same stage wait for each other rather than
both computing it.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from porter.codec import decode, decode_artifact, encode
from porter.fsutil import atomic_write_text, file_lock, fsync_dir, in_writable, make_dirs
from porter.hashing import file_digest

ARTIFACT_FILE = "artifact.json"
WORKSPACE_HINT = " (choose another with --workspace or the recipe's workspace: key)"


# ------------------------------------------------------------------------------------------------ store

def _file_stamps(folder: Path) -> dict[str, list]:
    """Relative name → [size, mtime_ns, sha256] of every file an artifact holds."""
    stamps = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith(ARTIFACT_FILE):
            st = path.stat()
            stamps[str(path.relative_to(folder))] = [st.st_size, st.st_mtime_ns, file_digest(path)]
    return stamps


def _damaged_file(folder: Path, stamps) -> str | None:
    """The first file of an artifact that is missing or no longer holds what was stored, or None.

    Size and modification time decide cheaply; only a file whose mtime moved (an edit, or a copy that did not
    keep times) is hashed again."""
    if not isinstance(stamps, dict):
        return None  # stored by a porter that did not record its files
    for name, stamp in stamps.items():
        if not (isinstance(stamp, list) and len(stamp) == 3):
            return f"the record of {name} is unreadable"
        size, mtime_ns, sha = stamp
        path = folder / name
        try:
            st = path.stat()
        except OSError:
            return f"{name} is missing"
        if st.st_size != size:
            return f"{name} has {st.st_size} bytes, stored with {size}"
        if st.st_mtime_ns != mtime_ns and file_digest(path) != sha:
            return f"{name} was modified: its content hash differs"
    return None


_RECORD_NUMBERS = ("seconds", "peak_rss_mb", "added_mb")


def _record_problem(data) -> str:
    """Why a parsed artifact.json is not one porter wrote, or ""."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    if "value" not in data:
        return "it has no 'value'"
    for name in _RECORD_NUMBERS:
        if name in data and (isinstance(data[name], bool) or not isinstance(data[name], (int, float))):
            return f"{name} is {data[name]!r}, not a number"
    if not isinstance(data.get("artifact_digest", ""), str):
        return f"artifact_digest is {data['artifact_digest']!r}, not a string"
    return ""


class Workspace:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self._reported_damage: set[tuple[str, str]] = set()

    def artifact_dir(self, stage: str, key: str) -> Path:
        return self.root / "artifacts" / stage / key

    def lookup(self, stage: str, key: str):
        """The stored artifact for (stage, key), or None. Only renamed-into-place artifacts whose files all
        still hold what was stored count: a truncated, edited or deleted model file is computed again rather
        than handed to the next stage."""
        final = self.artifact_dir(stage, key)
        meta = final / ARTIFACT_FILE
        if not meta.is_file():
            return None
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return self._recompute(stage, key, f"cannot be read: {ARTIFACT_FILE} is not JSON ({exc})")
        problem = _record_problem(data)
        if problem:
            return self._recompute(stage, key, f"cannot be read: {problem}")
        damaged = _damaged_file(final, data.get("files"))
        if damaged is not None:
            return self._recompute(stage, key, f"was changed since it was stored ({damaged})")
        try:
            return decode_artifact(data["value"], final)
        except (ValueError, TypeError, AttributeError) as exc:
            # a hand-edited or foreign artifact.json is like a changed file: compute it again, never crash on it
            return self._recompute(stage, key, f"cannot be read: its value does not decode ({exc})")

    def _recompute(self, stage: str, key: str, why: str) -> None:
        """Say once per run why a cached artifact is not used (the stage then computes and replaces it)."""
        if (stage, key) not in self._reported_damage:
            self._reported_damage.add((stage, key))
            print(f"porter: the cached {stage} artifact in {self.artifact_dir(stage, key)} {why}; computing it "
                  "again", file=sys.stderr)
        return None

    def record(self, stage: str, key: str) -> dict | None:
        """The stored record (timings, digest) of an artifact :meth:`lookup` accepted, or None."""
        meta = self.artifact_dir(stage, key) / ARTIFACT_FILE
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return data if not _record_problem(data) else None

    @contextlib.contextmanager
    def lock(self, stage: str, key: str) -> Iterator[None]:
        lock_dir = make_dirs(self.root / "locks", what="the workspace", named=self.root, hint=WORKSPACE_HINT)
        with file_lock(lock_dir / f"{stage}-{key}.lock"):
            yield

    def new_workdir(self, stage: str, key: str) -> Path:
        parent = make_dirs(self.artifact_dir(stage, key).parent, what=f"the workspace's {stage} folder",
                           named=self.root, hint=WORKSPACE_HINT)
        return Path(in_writable(lambda: tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=parent), parent,
                                what=f"a {stage} work folder"))

    def commit(self, stage: str, key: str, workdir: Path, value: Any, record: dict) -> Any:
        """Describe ``value`` in the work directory, then rename the directory into place; returns the rebased value."""
        final = self.artifact_dir(stage, key)
        payload = {"stage": stage, "key": key, "value": encode(value, workdir), **record,
                   "files": _file_stamps(workdir)}
        # keys in the order the stage produced them: a cache hit then reads back the same order
        atomic_write_text(workdir / ARTIFACT_FILE, json.dumps(payload, indent=1, sort_keys=False, default=str))
        fsync_dir(workdir)
        if final.exists():  # an untrusted leftover (no artifact.json) or a forced re-run
            shutil.rmtree(final)
        os.rename(workdir, final)
        fsync_dir(final.parent)
        return decode(payload["value"], final)

    def discard(self, workdir: Path) -> None:
        shutil.rmtree(workdir, ignore_errors=True)

    def sweep_temporaries(self) -> int:
        """Remove work directories that interrupted runs left behind; returns how many.

        A live run holds its key's lock while its work directory exists, so only directories whose lock is free
        are removed: a concurrent run's work in progress is left alone.
        """
        count = 0
        base = self.root / "artifacts"
        if not base.is_dir():
            return 0
        for stage_dir in base.iterdir():
            for tmp in stage_dir.glob(".tmp-*"):
                key = tmp.name[len(".tmp-"):].rsplit("-", 1)[0]
                lock_dir = make_dirs(self.root / "locks", what="the workspace", named=self.root,
                                     hint=WORKSPACE_HINT)
                with file_lock(lock_dir / f"{stage_dir.name}-{key}.lock", wait=False) as held:
                    if not held:
                        continue
                    shutil.rmtree(tmp, ignore_errors=True)
                    count += 1
        return count

"""A content-addressed artifact store.

Each stage's output lives in ``<root>/artifacts/<stage>/<key>/`` with an ``artifact.json`` describing the
typed object the stage returned. A stage writes into a fresh temporary directory next to its final place and the
directory is renamed into place only after ``artifact.json`` is fsync'ed, so an interrupted stage leaves nothing a
later run would trust. A lock file per key makes concurrent runs of the same stage wait for each other rather than
both computing it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import typing
from pathlib import Path
from typing import Any, Iterator

from porter import artifacts as _artifacts
from porter.errors import InputError

ARTIFACT_FILE = "artifact.json"
WORKSPACE_HINT = " (choose another with --workspace or the recipe's workspace: key)"
_TYPES = {cls.__name__: cls for cls in (
    _artifacts.OnnxModel, _artifacts.CompiledModel, _artifacts.InputSet, _artifacts.OutputSet,
    _artifacts.Metrics, _artifacts.TensorSpec, _artifacts.ParityCheck, _artifacts.PassRecord,
    _artifacts.Timing, _artifacts.SampleScore,
)}


# ------------------------------------------------------------------------------------------------ encoding

def encode(obj: Any, base: Path | None = None) -> Any:
    """Dataclasses → JSON-able data; paths under ``base`` become relative so the directory can move."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {"__type__": type(obj).__name__}
        for f in dataclasses.fields(obj):
            out[f.name] = encode(getattr(obj, f.name), base)
        return out
    if isinstance(obj, Path):
        if base is not None:
            try:
                return {"__path__": str(obj.resolve().relative_to(base.resolve())), "relative": True}
            except ValueError:
                pass
        return {"__path__": str(obj), "relative": False}
    if isinstance(obj, dict):
        return {str(k): encode(v, base) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode(v, base) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return str(obj)


def decode(data: Any, base: Path | None = None) -> Any:
    if isinstance(data, dict):
        if "__path__" in data:
            p = Path(data["__path__"])
            return (base / p) if data.get("relative") and base is not None else p
        if "__type__" in data:
            cls = _TYPES[data["__type__"]]
            hints = typing.get_type_hints(cls)
            kwargs = {}
            for f in dataclasses.fields(cls):
                if f.name not in data:
                    continue
                value = decode(data[f.name], base)
                if isinstance(value, list) and "tuple" in str(hints.get(f.name, "")):
                    value = tuple(value)
                kwargs[f.name] = value
            return cls(**kwargs)
        return {k: decode(v, base) for k, v in data.items()}
    if isinstance(data, list):
        return [decode(v, base) for v in data]
    return data


def canonical_json(data: Any) -> str:
    return json.dumps(encode(data), sort_keys=True, separators=(",", ":"), default=str)


def digest(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


_FILE_HASHES: dict[tuple, str] = {}


def file_digest(path: Path) -> str:
    """Content hash of a file, or of a folder's listing (relative names, sizes, mtimes)."""
    path = Path(path)
    st = path.stat()
    memo_key = (str(path), st.st_size, st.st_mtime_ns)
    if memo_key in _FILE_HASHES:
        return _FILE_HASHES[memo_key]
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                s = p.stat()
                h.update(f"{p.relative_to(path)}\0{s.st_size}\0{s.st_mtime_ns}\n".encode())
    else:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    _FILE_HASHES[memo_key] = h.hexdigest()
    return _FILE_HASHES[memo_key]


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _why_unwritable(path: Path, error: OSError) -> str:
    # "Not a directory" alone does not say which component is in the way
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                return f"{candidate} is a file, not a folder"
            break
    return error.strerror or str(error)


def make_dirs(path: Path, *, what: str, named: Path | None = None, hint: str = "") -> Path:
    """``mkdir -p`` that reports a folder porter cannot create as bad input (exit 2), not as a crash.

    ``named`` is the folder the message names (the workspace rather than its ``locks`` subfolder)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create {what} ({_why_unwritable(path, error)}); expected a folder porter can "
                         f"write to{hint}", file=named or path) from None
    return path


def _temporary(make, path: Path, *, what: str):
    try:
        return make()
    except OSError as error:
        raise InputError(f"cannot write {what} here ({_why_unwritable(path, error)}); expected a folder porter "
                         "can write to", file=path) from None


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file under a temporary name in the same folder, fsync, then rename over the target."""
    path = Path(path)
    make_dirs(path.parent, what=f"this folder for {path.name}")
    fd, tmp = _temporary(lambda: tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent),
                         path.parent, what=path.name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
        except (OSError, json.JSONDecodeError):
            return None
        damaged = _damaged_file(final, data.get("files"))
        if damaged is not None:
            if (stage, key) not in self._reported_damage:
                self._reported_damage.add((stage, key))
                print(f"porter: the cached {stage} artifact in {final} was changed since it was stored "
                      f"({damaged}); computing it again", file=sys.stderr)
            return None
        return decode(data["value"], final)

    def record(self, stage: str, key: str) -> dict | None:
        meta = self.artifact_dir(stage, key) / ARTIFACT_FILE
        if not meta.is_file():
            return None
        return json.loads(meta.read_text(encoding="utf-8"))

    @contextlib.contextmanager
    def lock(self, stage: str, key: str) -> Iterator[None]:
        lock_dir = make_dirs(self.root / "locks", what="the workspace", named=self.root, hint=WORKSPACE_HINT)
        lock_path = lock_dir / f"{stage}-{key}.lock"
        with _temporary(lambda: open(lock_path, "w"), lock_dir, what=f"lock file {lock_path.name}") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def new_workdir(self, stage: str, key: str) -> Path:
        parent = make_dirs(self.artifact_dir(stage, key).parent, what=f"the workspace's {stage} folder",
                           named=self.root, hint=WORKSPACE_HINT)
        return Path(_temporary(lambda: tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=parent), parent,
                               what=f"a {stage} work folder"))

    def commit(self, stage: str, key: str, workdir: Path, value: Any, record: dict) -> Any:
        """Describe ``value`` in the work directory, then rename the directory into place; returns the rebased value."""
        final = self.artifact_dir(stage, key)
        payload = {"stage": stage, "key": key, "value": encode(value, workdir), **record,
                   "files": _file_stamps(workdir)}
        meta_tmp = workdir / (ARTIFACT_FILE + ".tmp")
        with open(meta_tmp, "w", encoding="utf-8") as fh:
            # keys in the order the stage produced them: a cache hit then reads back the same order
            json.dump(payload, fh, indent=1, sort_keys=False, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(meta_tmp, workdir / ARTIFACT_FILE)
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
                lock_path = self.root / "locks" / f"{stage_dir.name}-{key}.lock"
                lock_path.parent.mkdir(parents=True, exist_ok=True)
                with open(lock_path, "w") as fh:
                    try:
                        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue
                    try:
                        shutil.rmtree(tmp, ignore_errors=True)
                        count += 1
                    finally:
                        fcntl.flock(fh, fcntl.LOCK_UN)
        return count

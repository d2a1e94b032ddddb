"""File-system helpers every writer in porter uses: folders that report bad input, atomic writes, file locks.

An atomic write goes to a temporary name in the target's folder, is fsync'ed, then renamed over the target, so a
reader sees the old file or the new one and never half of either; a crash leaves at most a hidden ``.tmp`` file.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from porter.errors import InputError

T = TypeVar("T")


def fsync_dir(path: Path | str) -> None:
    """Make a rename inside ``path`` durable (a no-op where the platform cannot open folders)."""
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


def make_dirs(path: Path | str, *, what: str, named: Path | None = None, hint: str = "") -> Path:
    """``mkdir -p`` that reports a folder porter cannot create as bad input (exit 2), not as a crash.

    ``named`` is the folder the message names (the workspace rather than its ``locks`` subfolder)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create {what} ({_why_unwritable(path, error)}); expected a folder porter can "
                         f"write to{hint}", file=named or path) from None
    return path


def in_writable(make: Callable[[], T], folder: Path, *, what: str) -> T:
    """``make()``, with an OSError from creating something in ``folder`` reported as bad input naming it."""
    try:
        return make()
    except OSError as error:
        raise InputError(f"cannot write {what} here ({_why_unwritable(folder, error)}); expected a folder porter "
                         "can write to", file=folder) from None


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` under a temporary name in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    make_dirs(path.parent, what=f"this folder for {path.name}")
    fd, tmp = in_writable(lambda: tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent),
                          path.parent, what=path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def file_lock(path: Path | str, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    Yields True once the lock is held; with ``wait=False`` it yields False at once when another process holds it
    (the block then runs without the lock and should do nothing that needs it)."""
    path = Path(path)
    with in_writable(lambda: open(path, "w"), path.parent, what=f"lock file {path.name}") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

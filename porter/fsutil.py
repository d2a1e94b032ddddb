"""File-system helpers every writer in porter uses: folders that report bad input, atomic writes, file locks.

An atomic write goes to a temporary name in the target's folder, is fsync'ed, then renamed over the target, so a
reader sees the old file or the new one and never half of either; a crash leaves at most a hidden ``.tmp`` file.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from porter.errors import InputError

T = TypeVar("T")


def resolve_path(path: Path | str, *, file: Path | str | None = None, field: str | None = None) -> Path:
    """``Path(path).resolve()`` for a path a user gave; a symbolic-link loop in it is bad input naming the file and
    field, not a crash (Python 3.11 raises RuntimeError for it, later versions OSError)."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:
        raise InputError(f"{path}: cannot be resolved ({exc}); expected a path that ends at a file or folder, "
                         "not a loop of symbolic links", file=file, field=field) from None


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


def _temporary_name(path: Path) -> Path:
    # hidden, unique per writer (two processes filling one shared folder must not interleave), and ending in the
    # target's suffix for writers that choose a format by it (soundfile)
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path | str, *, mode: int | None = None) -> Iterator[Path]:
    """A temporary path for a writer that needs a file name (``torch.save``, an exporter, ``soundfile``).

    Whatever the ``with`` block writes there is fsync'ed and renamed over ``path`` when the block ends; if it
    raises, the temporary file is removed and ``path`` is left as it was. ``mode`` sets the file's permissions
    (default: what a plain ``open`` gives under the umask)."""
    path = Path(path)
    make_dirs(path.parent, what=f"this folder for {path.name}")
    tmp = _temporary_name(path)
    try:
        yield tmp
        _fsync_file(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` under a temporary name in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    with atomic_path(path, mode=mode) as tmp:
        fd = in_writable(lambda: os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path.parent,
                         what=path.name)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)


def atomic_write_text(path: Path | str, text: str, *, mode: int | None = None) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_copy(source: Path | str, dest: Path | str) -> None:
    """Copy ``source`` to ``dest`` through :func:`atomic_path`: ``dest`` is the old file or a whole copy."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)


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

"""The one implementation of atomic writes, file locks, hashing and 'did you mean' that porter and plugins use."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import stat

import pytest

from porter import api
from porter.errors import InputError
from porter.fsutil import atomic_copy, atomic_path, atomic_write_bytes, atomic_write_text, file_lock
from porter.hashing import file_digest
from porter.suggest import closest, suggest


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "out.json"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second, longer")
    assert target.read_text() == "second, longer"
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_atomic_write_uses_the_umask_and_an_explicit_mode(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "plain.bin", b"\0\1")
        atomic_write_text(tmp_path / "run.sh", "#!/bin/sh\n", mode=0o755)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "plain.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "run.sh").stat().st_mode) == 0o755


def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".model.onnx.") and tmp.suffix == ".onnx"
            tmp.write_bytes(b"half")
            raise RuntimeError("exporter crashed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_atomic_copy(tmp_path):
    source = tmp_path / "a.bin"
    source.write_bytes(os.urandom(3000))
    atomic_copy(source, tmp_path / "sub" / "b.bin")
    assert (tmp_path / "sub" / "b.bin").read_bytes() == source.read_bytes()


def test_a_folder_that_cannot_be_made_is_bad_input(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        atomic_write_text(tmp_path / "file" / "out.txt", "y")


def _hold_lock(path, ready, release):
    with file_lock(path):
        ready.set()
        release.wait(30)


def test_file_lock_excludes_another_process(tmp_path):
    lock = tmp_path / "k.lock"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(lock, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with file_lock(lock, wait=False) as held:
            assert held is False
    finally:
        release.set()
        holder.join(30)
    with file_lock(lock, wait=False) as held:
        assert held is True


def test_file_digest_is_the_content_sha256(tmp_path):
    path = tmp_path / "x.bin"
    data = os.urandom(5000)
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()


def test_suggest_phrases():
    assert closest("varaints", ["variants", "model"]) == "variants"
    assert suggest("varaints", ["variants"]) == "; did you mean 'variants'?"
    assert suggest("zzz", ["variants"]) == ""
    assert suggest("forse_fp16", ["force_fp16"], " (did you mean {!r}?)") == " (did you mean 'force_fp16'?)"


def test_plugins_get_the_helpers_from_the_api():
    for name in ("atomic_write_text", "atomic_write_bytes", "atomic_path", "atomic_copy", "file_lock",
                 "file_digest", "digest", "suggest", "closest"):
        assert name in api.__all__ and hasattr(api, name)

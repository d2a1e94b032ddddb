"""Content hashes: of JSON-able data (cache keys) and of files and folders (inputs, stored artifacts)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from porter.codec import canonical_json

# (path, size, mtime_ns) → sha256: a file is hashed once per content stamp, however many keys name it
_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def digest(data: Any) -> str:
    """sha256 of ``data``'s canonical JSON."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def file_digest(path: Path | str) -> str:
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

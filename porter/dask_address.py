"""Checking a Dask scheduler address before connecting to it.

Dask's client waits without end for a scheduler file that does not exist, and fails deep inside its comm layer
on an address it cannot parse; porter checks both first, so bad input is exit 2 naming the address or the file.
Imports nothing from Dask (and nothing of porter.exec, which imports the recipe module that uses this one).
"""
from __future__ import annotations

import json
from pathlib import Path

from porter.errors import InputError

# the comm backends distributed registers (distributed.comm.registry); "inproc" only works inside one process
PROTOCOLS = ("tcp", "tls", "ucx", "ws", "wss", "inproc")
EXPECTED = "expected a Dask scheduler address such as tcp://10.0.0.10:8786, or a scheduler file (*.json)"


def _check_url(address: str, *, file, field: str) -> None:
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address  # Dask reads host:port as tcp
    if scheme not in PROTOCOLS:
        raise InputError(f"unknown protocol {scheme!r} in {address!r}; {EXPECTED} (protocols: "
                         f"{', '.join(PROTOCOLS)})", file=file, field=field)
    if scheme == "inproc":  # inproc://HOST/PID/N: only its own process can reach it
        return
    host, colon, port = rest.rpartition(":") if not rest.endswith("]") else (rest, "", "")
    if not colon:
        host, port = rest, ""
    if not host or "/" in host or any(c.isspace() for c in host):
        raise InputError(f"no host in {address!r}; {EXPECTED}", file=file, field=field)
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise InputError(f"port {port!r} in {address!r} is not a port number (1-65535); {EXPECTED}",
                         file=file, field=field)


def check_address(address, *, base_dir: Path | None = None, file=None, field: str = "address") -> str | None:
    """``address`` as the executor should use it (a scheduler file made absolute), or bad input naming it.

    ``base_dir`` resolves a relative scheduler file (the recipe's folder for a recipe's ``address:``)."""
    if address is None:
        return None
    if not isinstance(address, str) or not address.strip():
        raise InputError(f"{EXPECTED}, got {type(address).__name__} {address!r}", file=file, field=field)
    address = address.strip()
    candidate = Path(address).expanduser()
    if base_dir is not None and not candidate.is_absolute():
        candidate = base_dir / candidate
    if address.endswith(".json") or candidate.is_file():
        return str(_check_scheduler_file(candidate.resolve(), field=field))
    _check_url(address, file=file, field=field)
    return address


def _check_scheduler_file(path: Path, *, field: str) -> Path:
    what = "expected the JSON file `dask scheduler --scheduler-file FILE` writes, with the scheduler's address"
    if not path.exists():
        raise InputError(f"scheduler file not found ({field}); {what}", file=path)
    if path.is_dir():
        raise InputError(f"is a folder, not a scheduler file ({field}); {what}", file=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a Dask scheduler file ({field}): cannot read it as JSON ({exc}); {what}",
                         file=path) from None
    address = data.get("address") if isinstance(data, dict) else None
    if not isinstance(address, str):
        raise InputError(f"not a Dask scheduler file ({field}): it has no \"address\" string; {what}", file=path)
    _check_url(address, file=path, field=f"{field} (its \"address\")")
    return path


__all__ = ["PROTOCOLS", "check_address"]

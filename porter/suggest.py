"""'Did you mean' suggestions for misspelt names: of recipe keys, plugins, flags, choices."""
from __future__ import annotations

import difflib
from typing import Iterable

DID_YOU_MEAN = "; did you mean {!r}?"


def closest(name: object, known: Iterable[object]) -> str | None:
    """The known name closest to ``name``, or None when none is close enough to be a likely typo."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(name: object, known: Iterable[object], template: str = DID_YOU_MEAN) -> str:
    """A 'did you mean' phrase for a misspelt name (``template`` filled with the closest known name), or ''."""
    match = closest(name, known)
    return template.format(match) if match is not None else ""

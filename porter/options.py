"""Validation of option values against a plugin's Option table, with field paths in every error."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, cast

from porter.errors import RecipeError
from porter.fsutil import resolve_path
from porter.specs import Option
from porter.suggest import suggest

_PY_TYPES = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}


def unknown_name_error(*, file, field: str, kind: str, name, known) -> RecipeError:
    known = sorted(known)
    return RecipeError(
        f"unknown {kind} {name!r}{suggest(name, known)} (known: {', '.join(map(str, known)) or 'none'})",
        file=file,
        field=field,
    )


# a number as YAML 1.2 writes it; YAML 1.1 (PyYAML) needs a dot for a float, so "1e-3" arrives as a string
_YAML_1_1_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def yaml_float(value):
    """``value`` as a float when it is a number YAML 1.1 left as a string ("1e-3"); otherwise unchanged."""
    if isinstance(value, str) and _YAML_1_1_FLOAT.match(value.strip()):
        return float(value)
    return value


def _check_range(value, opt: Option, *, file, field: str) -> None:
    if opt.min is None and opt.max is None:
        return
    numbers = value if isinstance(value, list) else [value]
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            continue
        low = opt.min is not None and not number >= opt.min  # NaN is out of every range
        high = opt.max is not None and not number <= opt.max
        if low or high:
            kind = opt.kind if opt.kind in ("int", "float") else "number"
            raise RecipeError(f"{number!r} is out of range; expected {'an' if kind == 'int' else 'a'} {kind} "
                              f"{opt.range_text()}" + (f" ({opt.help})" if opt.help else ""),
                              file=file, field=field)


def validate_options(
    values: Mapping[str, Any] | None,
    table: Mapping[str, Option],
    *,
    file,
    field: str,
    owner: str,
    base_dir: Path,
    kind: str = "option",
) -> dict[str, Any]:
    """Check ``values`` against ``table``, fill defaults and resolve paths; return a new plain dict."""
    if values is not None and not isinstance(values, Mapping):
        raise RecipeError(f"expected a mapping of {kind}s (name: value), got {type(values).__name__} {values!r}",
                          file=file, field=field)
    values = dict(values or {})
    result: dict[str, Any] = {}
    for name, value in values.items():
        if name not in table:
            raise RecipeError(
                f"unknown {kind} {name!r} for {owner}{suggest(name, table)} "
                f"(known: {', '.join(sorted(table)) or 'none'})",
                file=file,
                field=f"{field}.{name}",
            )
        result[name] = _check_value(value, table[name], file=file, field=f"{field}.{name}", base_dir=base_dir)
    for name, opt in table.items():
        if name in result:
            continue
        if opt.required:
            raise RecipeError(f"required {kind} {name!r} of {owner} is missing ({opt.help or opt.kind})",
                              file=file, field=f"{field}.{name}")
        default = opt.default
        if opt.kind == "path" and default is not None:
            default = _check_value(default, opt, file=file, field=f"{field}.{name}", base_dir=base_dir)
        result[name] = default
    return result


def _check_value(value, opt: Option, *, file, field: str, base_dir: Path):
    if value is None:
        return None
    if opt.kind == "path":
        if not isinstance(value, (str, Path)):
            raise RecipeError(f"expected a path (string), got {value!r}", file=file, field=field)
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = resolve_path(base_dir / path, file=file, field=field)
        if opt.must_exist and not path.exists():
            raise RecipeError(f"file not found: {path} (expected {opt.help or 'an existing file or folder'})",
                              file=file, field=field)
        return path
    if opt.kind != "any":
        types = _PY_TYPES[opt.kind]
        # bool is an int in Python; a YAML `yes` must not pass as a number, nor 1 as a bool
        if isinstance(value, bool) and opt.kind in ("int", "float"):
            raise RecipeError(f"expected {opt.kind}, got {value!r}", file=file, field=field)
        if opt.kind == "float":
            # YAML 1.1 reads 1e-3 (no dot) as a string; for a float option it can only mean the number
            value = yaml_float(value)
        if not isinstance(value, types):
            hint = ""
            if opt.kind == "int" and isinstance(value, (str, float)) and _YAML_1_1_FLOAT.match(str(value)):
                hint = " (write a whole number such as 600, not an exponent)"
            raise RecipeError(f"expected {opt.kind}, got {type(value).__name__} {value!r}{hint}", file=file,
                              field=field)
        if opt.kind == "float":
            value = float(cast(Any, value))  # an int or float: the isinstance check above let nothing else by

        if opt.kind == "list":
            value = list(value)
        _check_range(value, opt, file=file, field=field)
    if opt.choices is not None:
        items = value if opt.kind == "list" else [value]
        for item in items:
            if item not in opt.choices:
                raise RecipeError(
                    f"bad value {item!r}{suggest(item, opt.choices)} (allowed: {', '.join(map(str, opt.choices))})",
                    file=file,
                    field=field,
                )
    return value

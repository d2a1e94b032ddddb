"""Option ranges (min/max) and how numbers written in YAML are read; every numeric option declares its range."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from porter.errors import RecipeError
from porter.options import validate_options
from porter.specs import Option


def _check(value, option: Option):
    return validate_options({"x": value}, {"x": option}, file=Path("r.yaml"), field="f", owner="test",
                            base_dir=Path("."))["x"]


def test_values_inside_the_range_pass_and_outside_fail_naming_the_range():
    option = Option("int", 8, min=1, max=64, help="samples per batch")
    assert _check(1, option) == 1 and _check(64, option) == 64
    for bad in (0, -1, 65):
        with pytest.raises(RecipeError, match=rf"r.yaml: f.x: {bad} is out of range; expected an int from 1 to 64 "
                                              r"\(samples per batch\)"):
            _check(bad, option)
    with pytest.raises(RecipeError, match="expected a float >= 0"):
        _check(-0.5, Option("float", min=0.0))
    with pytest.raises(RecipeError, match="expected a float <= 1"):
        _check(2, Option("float", max=1.0))


def test_nan_is_outside_every_range():
    with pytest.raises(RecipeError, match="nan is out of range"):
        _check(math.nan, Option("float", min=0.0))


def test_a_list_option_checks_each_number():
    option = Option("list", min=1)
    assert _check([1, 2], option) == [1, 2]
    with pytest.raises(RecipeError, match="0 is out of range"):
        _check([1, 0], option)


def test_exponent_strings_are_floats_for_float_options_only():
    # PyYAML (YAML 1.1) reads 1e-3 as the string "1e-3"
    assert _check("1e-3", Option("float")) == pytest.approx(1e-3)
    assert _check("-2.5E+2", Option("float")) == -250.0
    with pytest.raises(RecipeError, match=r"expected float, got str 'fast'"):
        _check("fast", Option("float"))
    with pytest.raises(RecipeError, match=r"expected int, got str '1e3' \(write a whole number"):
        _check("1e3", Option("int"))
    assert _check("1e-3", Option("str")) == "1e-3"


def test_a_recipe_tolerance_written_as_an_exponent_is_accepted(porter_project):
    recipe = porter_project.base_recipe(graph_fix=[{"name": "cleanup", "tolerance": "1e-3"}])
    path = porter_project.write_recipe(recipe)
    path.write_text(path.read_text().replace("'1e-3'", "1e-3"))  # as a user writes it: unquoted
    assert "tolerance: 1e-3\n" in path.read_text()
    code, out, err = porter_project.porter("validate", path)
    assert code == 0, out + err


def test_every_numeric_option_of_every_installed_plugin_declares_a_range():
    from porter.plugins import load_plugins

    registry = load_plugins().registry
    missing = []
    for kind in ("targets", "passes", "models", "datasets"):
        for name, spec in registry.specs[kind].items():
            tables = {"targets": ("flags",), "passes": ("options",), "models": ("options", "export_options"),
                      "datasets": ("options",)}[kind]
            for table in tables:
                for option_name, option in getattr(spec, table).items():
                    if option.kind in ("int", "float") and option.choices is None \
                            and option.min is None and option.max is None:
                        missing.append(f"{kind} {name}.{table}.{option_name}")
    assert not missing, "numeric options without a range: " + ", ".join(missing)

"""Two recipes on one workspace: each recipe's report survives, whichever finished last."""
from __future__ import annotations

import json

from porter.errors import EXIT_USAGE


def test_each_recipe_keeps_its_own_report(porter_project, tmp_path):
    workspace = tmp_path / "shared"
    first = porter_project.write_recipe(porter_project.base_recipe(name="first"), "first.yaml")
    second = porter_project.write_recipe(porter_project.base_recipe(
        name="second", dataset={"name": "blobs", "options": {"n": 10}}), "second.yaml")
    for path in (first, second):
        code, out, err = porter_project.porter("run", path, "--workspace", workspace, "--quiet")
        assert code == 0, out + err
    reports = {name: json.loads((workspace / "reports" / f"{name}.json").read_text()) for name in ("first", "second")}
    assert reports["first"]["name"] == "first" and reports["second"]["name"] == "second"
    assert len(reports["first"]["variants"][0]["samples"]) == 30
    assert len(reports["second"]["variants"][0]["samples"]) == 10
    # report.json is the latest run's
    assert json.loads((workspace / "report.json").read_text())["name"] == "second"
    # a refused run (an unknown variant) writes neither
    before = {p.name: p.read_bytes() for p in (workspace / "reports").iterdir()}
    code, _, err = porter_project.porter("run", first, "--workspace", workspace, "--variant", "nosuch")
    assert code == EXIT_USAGE and "unknown variant 'nosuch'" in err
    assert {p.name: p.read_bytes() for p in (workspace / "reports").iterdir()} == before
    assert json.loads((workspace / "report.json").read_text())["name"] == "second"

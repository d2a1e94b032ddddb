"""The core end to end, through recipes and the CLI, with the MLP test plugin."""
from __future__ import annotations

import json

import pytest

from porter.errors import EXIT_FAILURE, EXIT_USAGE


def _report(project) -> dict:
    return json.loads((project.root / ".porter" / "mlp_demo" / "report.json").read_text())


def test_plugins_lists_builtins_and_entry_points(porter_project):
    code, out, _ = porter_project.porter("plugins")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert listed[:2] == ["onnxruntime", "onnx_passes"]
    assert {"deepspeech", "ascend310"} <= set(listed)
    assert "targets: onnxruntime" in out


@pytest.mark.slow
def test_two_variants_run_through_all_six_stages(porter_project):
    recipe = porter_project.write_recipe(porter_project.base_recipe())
    code, out, err = porter_project.porter("run", recipe)
    assert code == 0, err
    report = _report(porter_project)
    names = [v["name"] for v in report["variants"]]
    assert names == ["torch", "ort"]
    ort = report["variants"][1]
    assert [s["stage"] for s in ort["stages"]] == ["preprocess", "export", "compile", "run", "score"]
    ref = report["variants"][0]
    assert [s["stage"] for s in ref["stages"]] == ["preprocess", "run_reference", "score"]
    # the exported model classifies exactly as the framework does, and the model really learnt the blobs
    assert ort["metrics"]["error_rate"] == ref["metrics"]["error_rate"] < 20
    assert ort["deltas"]["error_rate"] == 0
    assert "error_rate/even" in ort["metrics"]
    assert ort["latency_ms"]["p50"] > 0 and ort["throughput"] > 0
    assert ort["checks"][0]["max_abs_diff"] < 1e-5
    assert report["libraries"]["onnxruntime"] and report["host"]["cores"]
    assert "ort" in out and "error_rate" in out  # the table


@pytest.mark.slow
def test_unchanged_rerun_reuses_every_stage(porter_project):
    recipe = porter_project.base_recipe()
    recipe["metrics"] = ["error_rate", "accuracy"]  # not in alphabetical order
    recipe = porter_project.write_recipe(recipe)
    code, cold_out, _ = porter_project.porter("run", recipe)
    assert code == 0
    code, out, _ = porter_project.porter("run", recipe)
    assert code == 0
    # the same columns in the same order, whether the scores were computed or read back from the cache
    header = [line for line in out.splitlines() if line.startswith("variant")]
    assert header and header == [line for line in cold_out.splitlines() if line.startswith("variant")]
    columns = " ".join(header).split()  # the table, then the per-subset table where they do not fit in one
    assert columns.index("error_rate") < columns.index("accuracy") < columns.index("error_rate/even")
    report = _report(porter_project)
    assert report["stage_counts"]["computed"] == 0
    assert report["stage_counts"]["cached"] == 7  # preprocess is shared by both variants: 1 + 2 + 4
    assert all(s["cache_hit"] for v in report["variants"] for s in v["stages"])
    assert "0 computed" in out  # how much faster that is, bench/ measures; a timed assertion here only flakes


@pytest.mark.slow
def test_changing_one_flag_reruns_only_downstream_stages(porter_project):
    recipe = porter_project.base_recipe()
    path = porter_project.write_recipe(recipe)
    assert porter_project.porter("run", path)[0] == 0
    recipe["target"]["flags"]["graph_optimization_level"] = "basic"
    porter_project.write_recipe(recipe)
    assert porter_project.porter("run", path)[0] == 0
    ort = _report(porter_project)["variants"][1]
    hits = {s["stage"]: s["cache_hit"] for s in ort["stages"]}
    assert hits == {"preprocess": True, "export": True, "compile": False, "run": False, "score": False}
    # a run-only flag reuses the compiled model
    recipe["target"]["flags"]["warmup"] = 3
    porter_project.write_recipe(recipe)
    assert porter_project.porter("run", path)[0] == 0
    hits = {s["stage"]: s["cache_hit"] for s in _report(porter_project)["variants"][1]["stages"]}
    assert hits == {"preprocess": True, "export": True, "compile": True, "run": False, "score": False}


@pytest.mark.slow
def test_force_reruns_the_named_stage(porter_project):
    path = porter_project.write_recipe(porter_project.base_recipe())
    assert porter_project.porter("run", path)[0] == 0
    assert porter_project.porter("run", path, "--force", "export")[0] == 0
    ort = _report(porter_project)["variants"][1]
    hits = {s["stage"]: s["cache_hit"] for s in ort["stages"]}
    assert hits["export"] is False and hits["preprocess"] is True


def test_misspelt_flag_fails_with_field_path_and_suggestion(porter_project):
    recipe = porter_project.base_recipe()
    recipe["variants"]["ort"] = {"target": {"flags": {"graph_optimisation_level": "all"}}}
    path = porter_project.write_recipe(recipe)
    for command in ("validate", "run"):
        code, _, err = porter_project.porter(command, path)
        assert code == EXIT_USAGE
        assert str(path) in err
        assert "variants.ort.target.flags.graph_optimisation_level" in err
        assert "did you mean 'graph_optimization_level'" in err
    assert not (porter_project.root / ".porter" / "mlp_demo" / "artifacts").exists()


def test_bad_flag_value_lists_allowed_values(porter_project):
    recipe = porter_project.base_recipe()
    recipe["target"]["flags"]["batching"] = "buckets"
    code, _, err = porter_project.porter("validate", porter_project.write_recipe(recipe))
    assert code == EXIT_USAGE
    assert "target.flags.batching" in err and "'bucketed'" in err and "none, bucketed" in err


def test_unknown_model_name_is_suggested(porter_project):
    recipe = porter_project.base_recipe()
    recipe["model"]["name"] = "mpl"
    code, _, err = porter_project.porter("validate", porter_project.write_recipe(recipe))
    assert code == EXIT_USAGE and "model.name" in err and "did you mean 'mlp'" in err


@pytest.mark.slow
def test_a_pass_beyond_tolerance_fails_naming_the_pass(porter_project):
    recipe = porter_project.base_recipe(graph_fix=["scale_logits"])
    code, out, err = porter_project.porter("run", porter_project.write_recipe(recipe))
    assert code == EXIT_FAILURE
    report = _report(porter_project)
    ort = report["variants"][1]
    assert ort["status"] == "failed"
    assert "scale_logits" in ort["message"] and "graph_fix" in ort["message"]
    assert "smallest tolerance that would pass" in ort["message"]
    assert report["variants"][0]["status"] == "ok"  # the reference still ran
    # nothing half-written: no artifact directory for the failed pass
    fix_dir = porter_project.root / ".porter" / "mlp_demo" / "artifacts" / "graph_fix"
    assert not fix_dir.exists() or not any(p.name[0] != "." and (p / "artifact.json").exists()
                                           for p in fix_dir.iterdir())


def test_a_passing_builtin_pass_is_recorded_with_op_counts(porter_project):
    recipe = porter_project.base_recipe(graph_fix=["cleanup"])
    code, _, err = porter_project.porter("run", porter_project.write_recipe(recipe))
    assert code == 0, err
    rec = _report(porter_project)["variants"][1]["pass_records"][0]
    assert rec["name"] == "cleanup"
    assert rec["ops_before"] and rec["ops_after"]
    assert rec["check"]["max_abs_diff"] <= rec["check"]["tolerance"]


def test_plugin_exception_names_plugin_and_stage(porter_project):
    recipe = porter_project.base_recipe()
    recipe["model"]["options"]["hidden"] = 7  # the checkpoint has 16 hidden units: torch raises inside the plugin
    code, out, err = porter_project.porter("run", porter_project.write_recipe(recipe))
    assert code == EXIT_FAILURE
    report = _report(porter_project)
    msg = report["variants"][1]["message"]
    assert "mlp_porter" in msg and "export" in msg and "size mismatch" in msg


@pytest.mark.slow
def test_interrupted_stage_leftovers_are_never_trusted(porter_project):
    path = porter_project.write_recipe(porter_project.base_recipe())
    assert porter_project.porter("run", path)[0] == 0
    ws = porter_project.root / ".porter" / "mlp_demo" / "artifacts"
    export_dir = next(p for p in (ws / "export").iterdir() if not p.name.startswith("."))
    # simulate a kill between writing files and describing them: the artifact has no artifact.json
    (export_dir / "artifact.json").unlink()
    stale = ws / "export" / ".tmp-deadbeef-abc123"
    stale.mkdir()
    (stale / "half.onnx").write_bytes(b"partial")
    code, _, _ = porter_project.porter("run", path)
    assert code == 0
    assert (export_dir / "artifact.json").exists()
    assert not stale.exists()
    ort = _report(porter_project)["variants"][1]
    assert {s["stage"]: s["cache_hit"] for s in ort["stages"]}["export"] is False


def test_variant_names_cannot_escape_the_workspace(porter_project):
    recipe = porter_project.base_recipe()
    recipe["variants"] = {"../../x": {}}
    code, _, err = porter_project.porter("validate", porter_project.write_recipe(recipe))
    assert code == EXIT_USAGE and "variants.../../x" in err


@pytest.mark.slow
def test_budget_broken_gives_its_exit_code(porter_project):
    path = porter_project.write_recipe(porter_project.base_recipe())
    code, out, _ = porter_project.porter("run", path, "--budget", "ort:p99_ms<=0.000001")
    assert code == 3
    assert "BUDGET BROKEN: ort: p99_ms" in out
    code, out, _ = porter_project.porter("run", path, "--budget", "delta_error_rate<=0.5")
    assert code == 0 and "budget ok" in out


@pytest.mark.slow
def test_compare_names_the_flag_that_differs(porter_project, tmp_path):
    recipe = porter_project.base_recipe()
    path = porter_project.write_recipe(recipe)
    assert porter_project.porter("run", path, "--out", tmp_path / "a")[0] == 0
    recipe["target"]["flags"]["graph_optimization_level"] = "basic"
    porter_project.write_recipe(recipe)
    assert porter_project.porter("run", path, "--out", tmp_path / "b")[0] == 0
    code, out, _ = porter_project.porter("compare", tmp_path / "a" / "report.json", tmp_path / "b" / "report.json")
    assert code == 0
    line = next(line for line in out.splitlines() if "graph_optimization_level" in line)
    assert "ort flag" in line and "all" in line and "basic" in line
    code, out, _ = porter_project.porter("compare", tmp_path / "a" / "report.json", tmp_path / "b" / "report.json",
                                         "--budget", "ort:p50_ms<=0.0000001")
    assert code == 3 and "BUDGET BROKEN: ort: p50_ms" in out


def test_recipe_budgets_are_checked(porter_project):
    path = porter_project.write_recipe(porter_project.base_recipe(budgets=["ort:throughput>=1e12"]))
    code, out, _ = porter_project.porter("run", path)
    assert code == 3 and "BUDGET BROKEN: ort: throughput" in out
    # the workspace's report.json keeps the verdicts too, not only what the terminal printed
    verdicts = _report(porter_project)["verdicts"]
    assert [(v["variant"], v["ok"]) for v in verdicts] == [("ort", False)]

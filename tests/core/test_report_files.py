"""report.json/.md/.html on every run, report.md's sections, the one reader, compare on bad files, budget examples,
and the CPU features doctor and the reports detect."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from test_html_report import handmade_report

from porter.cli.main import build_parser
from porter.errors import InputError
from porter.plugins import load_plugins
from porter.report.host import cpu_features, host_info
from porter.report.markdown import render_markdown
from porter.report.reader import read_report
from porter.report.verdicts import FIXED_QUANTITIES, check_budget, parse_budget

ROOT = Path(__file__).resolve().parents[2]
FILES = ("report.json", "report.md", "report.html")


@pytest.mark.slow
def test_every_run_writes_the_three_reports_and_names_them(porter_project):
    path = porter_project.write_recipe(porter_project.base_recipe())
    code, out, err = porter_project.porter("run", path)
    assert code == 0, err
    ws = porter_project.root / ".porter" / "mlp_demo"
    for name in FILES:
        assert (ws / name).is_file() and name in out
    assert f"report: {ws / 'report.json'}" in out
    md = (ws / "report.md").read_text(encoding="utf-8")
    assert "## Variants" in md and "## Provenance" in md and "CPU features" in md
    # the saved report reads back into the typed model
    saved = read_report(ws / "report.json")
    assert [v.name for v in saved.variants] == ["torch", "ort"] and saved.variants[1].latency_ms.p50 > 0
    assert saved.variants[1].stages[0].stage and saved.variants[1].checks[0].passed
    # --out writes the same files elsewhere too; a cached re-run still writes them
    code, out, err = porter_project.porter("run", path, "--out", porter_project.root / "out")
    assert code == 0, err
    for name in FILES:
        assert (porter_project.root / "out" / name).is_file()
    assert f"(also in {porter_project.root / 'out'})" in out
    copied = json.loads((porter_project.root / "out" / "report.json").read_text())
    assert copied["stage_counts"]["computed"] == 0


def test_report_md_is_a_reviewers_document():
    report = handmade_report()
    report.host = host_info()
    md = render_markdown(report)
    for heading in ("## Variants", "### Metrics per subset", "## Budgets", "## Variant settings", "## Graph passes",
                    "## Parity checks", "## Worst utterances", "## Provenance"):
        assert heading in md, heading
    assert "| BROKEN |" in md and "delta\\_wer&lt;=0.5" in md and "| FAILED |" in md
    assert "LSTM 1→2" in md and "export vs torch &lt;fp32&gt;" in md and "pass drift" in md
    # worst samples with reference and hypothesis; model output cannot break the table or inject markup
    assert "HELLO WORLD" in md and "&lt;script&gt;" in md and "<script>" not in md
    assert "G O O" in md
    assert "f" * 64 in md and "atc 7.0 &lt;fake&gt;" in md and "CPU features:" in md
    # every table row has as many cells as its header
    for block in re.findall(r"((?:^\|.*\|$\n?)+)", md, flags=re.M):
        rows = [r for r in block.strip().splitlines()]
        counts = {len(re.split(r"(?<!\\)\|", r)) for r in rows}
        assert len(counts) == 1, rows


@pytest.mark.parametrize("content, expected", [
    ("[1, 2]", "expected a porter report (a JSON object with a 'variants' list), found a list of 2"),
    ('{"hello": "world"}', "not a porter report: expected a JSON object with a 'variants' list, found 'hello'"),
    ('{"variants": [1, 2]}', "variants[0]: expected an object, found the number 1"),
    ('{"variants": [{"name": "a", "metrics": {"wer": "x"}}]}',
     "variants[0].metrics.wer: expected a number or null, found the string 'x'"),
    ('{"variants": [{"metrics": {}}]}', "variants[0].name: expected the variant's name (a string), found null"),
    ("not json", "not JSON"),
])
def test_compare_refuses_what_is_not_a_report(porter_project, tmp_path, content, expected):
    good = tmp_path / "good.json"
    good.write_text(handmade_report().to_json())
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    for args in ((good, bad), (bad, good)):
        code, out, err = porter_project.porter("compare", *args)
        assert code == 2 and f"{bad}" in err and expected in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_compare_refuses_a_folder_naming_the_report_inside(porter_project, tmp_path):
    good = tmp_path / "good.json"
    good.write_text(handmade_report().to_json())
    folder = tmp_path / "run"
    folder.mkdir()
    code, _, err = porter_project.porter("compare", good, folder)
    assert code == 2 and f"{folder}: is a folder; expected a porter report.json file" in err
    (folder / "report.json").write_text(good.read_text())
    assert "(it holds a report.json: pass that)" in porter_project.porter("compare", good, folder)[2]


def test_a_saved_report_reads_back_equal_to_what_was_written(tmp_path):
    report = handmade_report()
    path = tmp_path / "report.json"
    report.write(path)
    again = read_report(path)
    assert again.to_json() == report.to_json()
    with pytest.raises(InputError, match="report not found"):
        read_report(tmp_path / "missing.json")


def _help_texts() -> str:
    parser = build_parser(load_plugins())
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return "\n".join(p.format_help() for p in sub.choices.values())


def _budget_examples(text: str) -> list[str]:
    """Every budget an example shows: ``--budget '...'``, a quoted ``[VARIANT:]QUANTITY OP NUMBER`` and the
    items of a ``budgets: [...]`` list."""
    quoted = r"[A-Za-z0-9_:/.Δ-]+\s*(?:<=|>=|==|<|>)\s*[-+0-9.eE]+"
    found = re.findall(rf"'({quoted})'", text)
    for listed in re.findall(r"budgets:\s*\[([^\]]*)\]", text):
        found += re.findall(r"[\"']([^\"']+)[\"']", listed)
    return sorted(set(found))


def test_every_budget_example_in_the_help_and_the_readme_parses_and_is_known():
    sys.path.insert(0, str(ROOT / "recipes"))  # the shipped precision-search recipe's own plugin
    try:
        plugins = load_plugins(["fragile_porter"])
    finally:
        sys.path.remove(str(ROOT / "recipes"))
    metrics = set(plugins.registry.specs["metrics"])
    variants = set()
    for recipe in ROOT.glob("recipes/**/*.yaml"):
        variants |= set(re.findall(r"^  ([A-Za-z0-9_.-]+):", recipe.read_text(), flags=re.M))
    help_examples = _budget_examples(_help_texts())
    readme_examples = _budget_examples((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "delta_wer<=0.5" in help_examples and "delta_wer<=0.5" in readme_examples
    assert not any("wer_delta" in b for b in help_examples + readme_examples)
    for text in help_examples + readme_examples:
        budget = parse_budget(text)  # raises on a malformed one
        check_budget(budget, metrics=metrics, variants=sorted(variants) if budget.variant else None)
        assert budget.quantity in FIXED_QUANTITIES or budget.metric in metrics or \
            budget.metric.partition("/")[0] in metrics, text


def test_cpu_features_come_from_the_flags_never_assumed(tmp_path):
    assert cpu_features({"avx2", "avx512f", "avx512_vnni"}) == {
        "AVX2": True, "AVX-512": True, "VNNI": True, "AVX512-BF16": False, "AVX512-FP16": False, "AMX": False}
    assert cpu_features({"avx_vnni", "amx_tile", "amx_int8"})["VNNI"] and cpu_features({"amx_tile"})["AMX"]
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 amx_tile amx_bf16\n")
    host = host_info(cpuinfo)
    assert host["cpu"] == "Test CPU 9000" and host["cpu_features"] == "AVX2, AMX"
    assert host["amx"] == "amx_bf16, amx_tile"
    assert "unknown" in host_info(tmp_path / "absent")["cpu_features"]


def test_doctor_shows_cpu_features_versions_and_what_is_missing(porter_project):
    code, out, err = porter_project.porter("doctor")
    assert code == 0, err
    assert "host: " in out and "CPU features" in out
    for feature in ("AVX-512", "VNNI", "AVX512-BF16", "AMX"):
        assert re.search(rf"^  {re.escape(feature)}\s+(yes|no) ", out, flags=re.M), feature
    assert "onnxruntime: " in out and "missing:" in out


def test_html_table_scrolls_in_its_box_with_the_variant_column_sticky_and_ties_stay_readable():
    from porter.report.html import render_html
    from porter.report.plots import _label_offsets, readable_span

    page = render_html(handmade_report())
    assert '<div class="scroll"><table class="sticky">' in page and "position: sticky" in page
    # equally accurate variants: the axis spans at least 10 % of the value, not 15.30-15.50
    lo, hi = readable_span([15.3, 15.3, 15.5])
    assert hi - lo >= 1.53 and lo < 15.3 and hi > 15.5
    assert readable_span([0.0, 0.0]) == (0.0, 0.5)
    # tied points close together get their names stacked, a far one on the same line does not
    assert _label_offsets([(8.0, 15.3), (9.0, 15.3), (60.0, 15.3), (8.5, 15.5)]) == [(6, 7), (6, 18), (6, 7),
                                                                                    (6, 7)]

"""Writing a run's report files: report.json always (in the workspace), and .json/.md/.html on request."""
from __future__ import annotations

from pathlib import Path

from porter.report import RunReport
from porter.fsutil import atomic_write_text


def render_markdown(report: RunReport) -> str:
    from porter.report import table_rows

    header, rows = table_rows(report)
    lines = [f"# porter report: {report.name}", "", f"recipe `{report.recipe}` (sha256 {report.recipe_digest[:12]}), "
             f"porter {report.porter_version}, {report.started}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = [f"- {v.name}: {v.details['random_inputs']}" for v in report.variants if v.details.get("random_inputs")]
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


def write_outputs(report: RunReport, out_dir: Path | None) -> None:
    if out_dir is None:
        return
    out_dir = Path(out_dir)
    report.write(out_dir / "report.json")
    atomic_write_text(out_dir / "report.md", render_markdown(report))
    try:
        from porter.html_report import render_html
    except ImportError:
        return
    atomic_write_text(out_dir / "report.html", render_html(report))


__all__ = ["write_outputs", "render_markdown"]

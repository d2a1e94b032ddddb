"""Writing a run's report files: report.json, report.md and report.html, into the workspace on every run."""
from __future__ import annotations

from pathlib import Path

from porter.fsutil import atomic_write_text, make_dirs
from porter.report.html import render_html
from porter.report.markdown import render_markdown
from porter.report.model import RunReport

REPORT_FILES = ("report.json", "report.md", "report.html")


def write_outputs(report: RunReport, *folders: Path) -> list[list[Path]]:
    """Render the three report files once and write them into every folder; returns each folder's paths."""
    texts = (report.to_json(), render_markdown(report), render_html(report))
    written = []
    for folder in folders:
        folder = make_dirs(Path(folder), what="a folder for the report files")
        paths = [folder / name for name in REPORT_FILES]
        for path, text in zip(paths, texts):
            atomic_write_text(path, text)
        written.append(paths)
    return written


__all__ = ["REPORT_FILES", "write_outputs"]

"""Running a recipe for a person at a terminal: a progress line per stage on stderr, then the variants table,
the stage counts, the report files and the budget verdicts on stdout, and the exit code ``porter run`` returns.

``porter run`` is a thin parser over :func:`run_and_print`; plugin commands that end in a run (``porter score
BUNDLE``) call it through porter.api, so they print and exit exactly as ``porter run`` does.
"""
from __future__ import annotations

import sys
from pathlib import Path

from porter.errors import EXIT_FAILURE, EXIT_TOOL_MISSING
from porter.fsutil import make_dirs
from porter.pipeline import run_recipe
from porter.report.outputs import REPORT_FILES
from porter.report.table import render_table, terminal_width
from porter.report.verdicts import exit_code_for, format_verdict


class StageProgress:
    """One line per stage on stderr: which of the run's stages, which variant, n of N."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.total = 0
        self.done = 0

    def begin(self, total: int) -> None:
        self.total = total

    def __call__(self, node, variant) -> None:
        self.done += 1
        width = len(str(self.total))
        print(f"porter: [{self.done:>{width}}/{self.total}] {node.stage:<13} {variant or '-'}  {node.label}",
              file=self.stream, flush=True)


def run_and_print(recipe, *, workspace: Path | None = None, force=None, bundle: Path | None = None,
                  executor: str | None = None, address: str | None = None, variants=None, budgets=(),
                  out: Path | None = None, quiet: bool = False, wide: bool = False) -> int:
    """Run a recipe as ``porter run`` does: the variants table, stage counts, the report files and budget
    verdicts on stdout.

    ``force`` is ``None`` (use the cache), ``()`` (re-run every stage) or the stage names to re-run. Returns
    the exit code ``porter run`` would.
    """
    if out:
        # before the run, not after it: a long run must not end on a folder it cannot write
        make_dirs(out, what="the --out folder for report.json, report.md and report.html")
    force_all = force is not None and len(force) == 0
    force_stages = tuple(force or ())
    progress = StageProgress() if not quiet and sys.stderr.isatty() else None
    report = run_recipe(recipe, workspace=workspace, force_stages=force_stages, force_all=force_all,
                        bundle=bundle, executor=executor, address=address, variants=variants,
                        progress=progress, budgets=budgets, on_plan=progress.begin if progress else None,
                        out_dirs=(out,) if out else ())
    verdicts = report.verdicts
    width = terminal_width(sys.stdout)
    print(render_table(report, width=width, wide=wide, color=width is not None))
    c = report.stage_counts
    print(f"\nstages: {c.get('computed', 0)} computed, {c.get('cached', 0)} from cache, "
          f"{c.get('skipped', 0)} skipped, {c.get('failed', 0)} failed; {report.wall_seconds:.1f} s")
    first, *rest = REPORT_FILES
    print(f"report: {Path(report.workspace) / first}, {', '.join(rest)}" + (f" (also in {out})" if out else ""))
    for v in verdicts:
        print(format_verdict(v))
    code = exit_code_for(verdicts)
    if code:
        return code
    if any(v.status == "failed" for v in report.variants):
        return EXIT_FAILURE
    if any(v.status == "skipped" for v in report.variants) and not report.allow_missing_tools:
        return EXIT_TOOL_MISSING
    return 0


__all__ = ["StageProgress", "run_and_print"]

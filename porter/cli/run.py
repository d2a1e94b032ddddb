"""``porter run RECIPE``: run every variant of a recipe and print one table side by side."""
from __future__ import annotations

import sys
from pathlib import Path

from porter.errors import EXIT_FAILURE, EXIT_TOOL_MISSING
from porter.plan import STAGES


def add_parser(sub):
    p = sub.add_parser("run", help="run a recipe's variants and print the comparison table")
    p.add_argument("recipe")
    p.add_argument("--workspace", type=Path, help="artifact cache folder (default: the recipe's, or "
                   "<recipe dir>/.porter/<recipe name>)")
    p.add_argument("--force", nargs="*", metavar="STAGE", choices=STAGES,
                   help="re-run stages even when cached: all of them, or only the named stages")
    p.add_argument("--bundle", type=Path, metavar="DIR",
                   help="where a vendor toolchain is missing, targets that can write a device bundle "
                   "(see `porter plugins`) write a self-contained one to DIR")
    p.add_argument("--variant", action="append", help="run only this variant (repeatable)")
    p.add_argument("--executor", choices=("local", "dask"), help="where stages run (default: the recipe's, "
                   "else local)")
    p.add_argument("--address",
                   help="Dask scheduler address (tcp://host:8786) or scheduler file (*.json); default: a local cluster")
    p.add_argument("--budget", action="append", default=[], metavar="EXPR",
                   help="a regression budget such as 'delta_wer<=0.5' or 'p99_ms<=40' (repeatable)")
    p.add_argument("--out", type=Path, help="also write report.json/.md/.html into this folder")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def _progress(node, variant):
    print(f"porter: {variant or '-'}: {node.stage} {node.label}", file=sys.stderr, flush=True)


def run(args) -> int:
    return run_and_print(args.recipe, workspace=args.workspace, force=args.force, bundle=args.bundle,
                         executor=args.executor, address=args.address, variants=args.variant,
                         budgets=args.budget, out=args.out, quiet=args.quiet)


def run_and_print(recipe, *, workspace: Path | None = None, force=None, bundle: Path | None = None,
                  executor: str | None = None, address: str | None = None, variants=None, budgets=(),
                  out: Path | None = None, quiet: bool = False) -> int:
    """Run a recipe as ``porter run`` does: the variants table, stage counts and budget verdicts on stdout.

    ``force`` is ``None`` (use the cache), ``()`` (re-run every stage) or the stage names to re-run. Returns
    the exit code ``porter run`` would. Plugin commands (``porter score BUNDLE``) call it through porter.api.
    """
    from porter.outputs import write_outputs
    from porter.pipeline import run_recipe
    from porter.report import render_table
    from porter.verdicts import exit_code_for, format_verdict

    if out:
        from porter.fsutil import make_dirs

        # before the run, not after it: a long run must not end on a folder it cannot write
        make_dirs(out, what="the --out folder for report.json")
    force_all = force is not None and len(force) == 0
    force_stages = tuple(force or ())
    show_progress = not quiet and sys.stderr.isatty()
    report = run_recipe(recipe, workspace=workspace, force_stages=force_stages, force_all=force_all,
                        bundle=bundle, executor=executor, address=address, variants=variants,
                        progress=_progress if show_progress else None, budgets=budgets)
    verdicts = report.verdicts
    write_outputs(report, out)
    print(render_table(report))
    c = report.stage_counts
    print(f"\nstages: {c.get('computed', 0)} computed, {c.get('cached', 0)} from cache, "
          f"{c.get('skipped', 0)} skipped, {c.get('failed', 0)} failed; {report.wall_seconds:.1f} s; "
          f"report: {Path(report.workspace) / 'report.json'}")
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

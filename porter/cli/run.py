"""``porter run RECIPE``: run every variant of a recipe, print one table side by side, write the report files."""
from __future__ import annotations

from pathlib import Path

from porter.plan import STAGES

BUDGET_EXAMPLES = ("delta_wer<=0.5", "p99_ms<=40", "onnxruntime_fp32:throughput>=20")


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
                   help="a regression budget [VARIANT:]QUANTITY OP NUMBER, e.g. "
                        + ", ".join(f"'{b}'" for b in BUDGET_EXAMPLES) + " (repeatable)")
    p.add_argument("--out", type=Path, help="also write report.json/.md/.html into this folder (they are always "
                   "written into the workspace)")
    p.add_argument("--wide", action="store_true", help="print every column of the table, however wide")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args) -> int:
    from porter.console import run_and_print  # the pipeline's imports wait until a run is asked for

    return run_and_print(args.recipe, workspace=args.workspace, force=args.force, bundle=args.bundle,
                         executor=args.executor, address=args.address, variants=args.variant,
                         budgets=args.budget, out=args.out, quiet=args.quiet, wide=args.wide)

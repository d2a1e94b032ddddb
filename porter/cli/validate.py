"""``porter validate RECIPE``: check a recipe against the installed plugins without running anything."""
from __future__ import annotations

from porter.pipeline import prepare


def add_parser(sub):
    p = sub.add_parser("validate", help="check a recipe without running it (exit 2 when it is wrong)")
    p.add_argument("recipe")
    p.set_defaults(func=run)


def run(args) -> int:
    recipe, _ = prepare(args.recipe)
    for v in recipe.variants:
        what = "reference (framework)" if v.reference or v.target is None else f"target {v.target.name}"
        passes = ", ".join(p.name for p in v.passes) or "no passes"
        print(f"{v.name}: model {v.model.name}, dataset {v.dataset.name}, {what}, {passes}")
    print(f"{recipe.path}: ok ({len(recipe.variants)} variants)")
    return 0

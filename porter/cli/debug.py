"""``porter debug RECIPE --variant V``: where a variant's numbers leave the reference's, layer by layer."""
from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub):
    p = sub.add_parser("debug", help="compare a variant's graph with its export tensor by tensor: per-layer error, "
                                     "the first tensor beyond a tolerance, a table and a plot")
    p.add_argument("recipe")
    p.add_argument("--variant", required=True, help="the variant to examine (not the framework reference)")
    p.add_argument("--samples", type=int, default=3, help="real inputs to run, one at a time and, where the model "
                   "takes a dynamic batch, as one zero-padded batch (default 3)")
    p.add_argument("--tolerance", type=float, default=1e-2,
                   help="max relative error (max |diff| / max |reference|) a tensor may have (default 0.01)")
    p.add_argument("--workspace", type=Path, help="artifact cache folder (default: the recipe's)")
    p.add_argument("--out", type=Path, help="folder for divergence.md/.json/.png (default: "
                   "<workspace>/debug/<variant>)")
    p.add_argument("--all", action="store_true", help="print every matched tensor, not only computing layers")
    p.set_defaults(func=run)


def run(args) -> int:
    from porter.errors import InputError
    from porter.fsutil import make_dirs
    from porter.pipeline import _importable_from, prepare
    from porter.precision.divergence import diverge, render_table, write
    from porter.precision.graphs import variant_graphs

    if args.samples < 1:
        raise InputError(f"is {args.samples}; expected at least 1 sample", field="--samples")
    if not args.tolerance > 0:
        raise InputError(f"is {args.tolerance}; expected a positive number", field="--tolerance")
    recipe, plugins = prepare(args.recipe, workspace=args.workspace)
    out = args.out or (recipe.workspace / "debug" / args.variant)
    make_dirs(out, what="the folder for the divergence report")
    with _importable_from(recipe.path.parent):
        graphs = variant_graphs(recipe, plugins, args.variant)
    report = diverge(graphs.reference, graphs.graph, graphs.inputs, variant=args.variant, workdir=out,
                     samples=args.samples, tolerance=args.tolerance, names_from=graphs.compile_input)
    paths = write(report, out)
    print(f"reference: the export ({graphs.reference}); variant graph: {graphs.graph_from} ({graphs.graph})")
    if graphs.compile_message:
        print(f"the compiled model is not an ONNX graph here ({graphs.compile_message.splitlines()[0]}); "
              "compared the graph the compiler was given", file=sys.stderr)
    print(render_table(report, all_rows=args.all))
    print(f"\ntable: {paths['table']}\nplot: {paths['plot']}\njson: {paths['json']}")
    return 0

"""``porter precision-search RECIPE --variant V --budget 'delta_wer<=0.1'``: the smallest keep-list that brings a
reduced-precision variant within a budget, proven by running it, and written in every target's language."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def add_parser(sub):
    p = sub.add_parser("precision-search", help="find a small set of nodes to keep in fp32 that brings a variant "
                       "within a budget; write it as atc keep_dtype / modify_mixlist, NNCF ignored_scope, ...")
    p.add_argument("recipe")
    p.add_argument("--variant", required=True, help="the reduced-precision variant")
    p.add_argument("--budget", required=True, help="e.g. 'delta_wer<=0.1' (any porter budget quantity)")
    p.add_argument("--max-candidates", type=int, default=16, help="nodes the search may keep (default 16)")
    p.add_argument("--samples", type=int, default=3, help="real inputs for the per-layer errors (default 3)")
    p.add_argument("--no-prune", action="store_true", help="stop at the shortest ranked prefix that meets the "
                   "budget instead of then trying each node without")
    p.add_argument("--workspace", type=Path, help="artifact cache folder (default: the recipe's)")
    p.add_argument("--executor", choices=("local", "dask"), help="where trial stages run (default: the recipe's)")
    p.add_argument("--address", help="Dask scheduler address")
    p.add_argument("--out", type=Path, help="folder for the emitted files (default: "
                   "<workspace>/precision/<variant>)")
    p.set_defaults(func=run)


def _progress(node, variant):
    print(f"porter: {variant or '-'}: {node.stage} {node.label}", file=sys.stderr, flush=True)


def run(args) -> int:
    import onnx

    from porter.errors import InputError
    from porter.fsutil import atomic_write_text, make_dirs
    from porter.pipeline import _importable_from, prepare
    from porter.precision.divergence import diverge, write
    from porter.precision.emit import emit
    from porter.precision.graphs import variant_graphs
    from porter.precision.search import (
        Searcher,
        SearchResult,
        check_budget,
        find_knob,
        rank_candidates,
        render_trials,
        search,
    )

    budget = check_budget(args.budget)
    if args.max_candidates < 1:
        raise InputError(f"is {args.max_candidates}; expected at least 1", field="--max-candidates")
    recipe, plugins = prepare(args.recipe, workspace=args.workspace)
    out = make_dirs(args.out or (recipe.workspace / "precision" / args.variant), what="the search's folder")
    executor = args.executor or recipe.executor
    address = args.address or recipe.address
    progress = _progress if sys.stderr.isatty() else None
    with _importable_from(recipe.path.parent):
        graphs = variant_graphs(recipe, plugins, args.variant, executor=executor, address=address,
                                progress=progress)
        knob = find_knob(graphs.variant, plugins, graphs)
        divergence = diverge(graphs.reference, graphs.graph, graphs.inputs, variant=args.variant,
                             workdir=out / "divergence", samples=args.samples,
                             names_from=graphs.compile_input)
        write(divergence, out / "divergence")
        candidates = rank_candidates(divergence, onnx.load(str(knob.graph), load_external_data=False),
                                     args.max_candidates)
        searcher = Searcher(recipe, plugins, graphs.variant, knob, budget, executor=executor, address=address,
                            progress=progress)
        chosen = search(searcher, candidates, prune=not args.no_prune)
    result = SearchResult(args.variant, budget, knob.describe(graphs.variant), candidates,
                          tuple(searcher.trials.values()), chosen)
    atomic_write_text(out / "search.json", json.dumps(result.to_json(), indent=1) + "\n")
    print(render_trials(result))
    if chosen is None:
        return 3
    if not chosen.kept:
        print(f"\n{args.variant} already meets {budget!r}: nothing to keep, no files written\ntrials: "
              f"{out / 'search.json'}")
        return 0
    knob_pass = graphs.variant.passes[knob.pass_index].name if knob.pass_index is not None else None
    emitted = emit(chosen.kept, knob.graph, out, variant=args.variant, knob_pass=knob_pass,
                   base_passes=graphs.variant.passes,
                   openvino=plugins.registry.get("targets", "openvino") is not None)
    print(f"\nkeep_dtype: {emitted.keep_dtype}\nmodify_mixlist: {emitted.modify_mixlist}\n"
          f"nncf ignored_scope: {emitted.nncf_ignored_scope}\nopenvino rt_info: {emitted.openvino_rt_info} "
          f"(not honoured at inference by OpenVINO 2026.4.1's CPU plugin)\nrecipe fragment: {emitted.recipe_fragment}"
          f"\ntrials: {out / 'search.json'}")
    return 0

#!/usr/bin/env python
"""Run issue 10's six benchmarks on this machine, print the ratios and write bench/results/benchmarks.json.

    python bench/run_benchmarks.py            # the full set: every figure the median of >= 5 runs after warm-up
    python bench/run_benchmarks.py --quick    # a small, fast pass that checks the script works (not figures)

See bench/README.md for what each bench measures.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
# librosa's numba cache must be writable; child processes inherit this
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "porter-numba"))

from bench_recipe import DEFAULT_MAX_BATCH_FRAMES  # noqa: E402 - bench/ is on sys.path from here on

import porter_deepspeech  # noqa: E402,F401 - its import quiets torch's C++ exporter warnings before torch loads
from porter.fsutil import atomic_write_text  # noqa: E402

DEFAULT_RECIPE_CANDIDATES = ("deepspeech_an4.yaml", "default.yaml")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small model for bench 1, 12 utterances, 2 repetitions: checks the script, not figures")
    p.add_argument("--only", default="1,2,6", help="comma list of bench groups to run: 1, 2 (= benches 2-5), 6")
    p.add_argument("--repeats", type=int, help="timed repetitions per figure (default 5; 2 with --quick)")
    p.add_argument("--batch-size", type=int, default=16,
                   help="batch size of the bucketed variants (default 16, as the default recipe)")
    p.add_argument("--max-batch-frames", type=int, default=DEFAULT_MAX_BATCH_FRAMES,
                   help=f"frame budget of the bucketed variants (default {DEFAULT_MAX_BATCH_FRAMES} = 2 x 621, as "
                        "the default recipe)")
    p.add_argument("--frame-budgets", default="0,621,2400",
                   help="other frame budgets timed and measured beside it, the batching sweep (0: no budget, "
                        "only --batch-size; empty: no sweep)")
    p.add_argument("--limit", type=int, help="use only the first N test utterances (default all; 12 with --quick)")
    p.add_argument("--passes", help="comma list of graph passes for bench 4 (default: the Ascend 310 chain in "
                   "bench_recipe.ASCEND_CHAIN)")
    p.add_argument("--recipe6", type=Path, help="recipe for bench 6 (default: the repository's default recipe, "
                   "recipes/deepspeech_an4.yaml; with --quick, the small bench recipe)")
    p.add_argument("--workspace", type=Path, default=HERE / "results" / "workspace",
                   help="porter workspace for the bench recipe (kept between invocations)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "benchmarks.json")
    # internal: one memory measurement in a fresh process (bench 5)
    p.add_argument("--memory-probe", metavar="VARIANT", help=argparse.SUPPRESS)
    p.add_argument("--recipe", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _default_recipe6(bench_recipe: Path) -> Path:
    for name in DEFAULT_RECIPE_CANDIDATES:
        candidate = REPO / "recipes" / name
        if candidate.is_file():
            return candidate
    return bench_recipe


def _finite(obj):
    """JSON has no NaN: write null."""
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _write(path: Path, results: dict) -> None:
    atomic_write_text(path, json.dumps(_finite(results), indent=1, default=str))


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.memory_probe:
        import pipeline_benches

        pipeline_benches.memory_probe_main(args.recipe, args.workspace, args.memory_probe)
        return 0

    import bench_recipe

    from porter.report.host import host_info, library_versions

    only = {part.strip() for part in args.only.split(",") if part.strip()}
    repeats = args.repeats or (2 if args.quick else 5)
    limit = args.limit or (12 if args.quick else None)
    results = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": args.quick,
               "repeats": repeats, "host": host_info(), "libraries": library_versions(),
               "load_average_at_start": os.getloadavg(), "benchmarks": {}}
    if args.quick:
        results["note"] = "--quick: small sizes and 2 repetitions to check the script; these are not the figures"
    lines: list[str] = []
    t0 = time.perf_counter()

    if "1" in only:
        import single_utterance

        if args.quick:
            r = single_utterance.run(hidden=256, layers=3, frames=621, repeats=repeats, matmul_size=1024)
        else:
            r = single_utterance.run(hidden=1024, layers=5, frames=621, repeats=repeats, matmul_size=4096)
        results["benchmarks"]["1_onnxruntime_vs_eager"] = r
        lines += single_utterance.summary(r)
        _write(args.out, results)
        print("\n".join(single_utterance.summary(r)), flush=True)

    bench_dir = args.workspace.parent
    checkpoint, weights = bench_recipe.demo_checkpoint(bench_dir / "checkpoints")
    passes = ([p.strip() for p in args.passes.split(",") if p.strip()] if args.passes
              else bench_recipe.ascend_pass_names())
    recipe = bench_recipe.write_recipe(bench_dir / ("bench_quick.yaml" if args.quick else "bench.yaml"),
                                       checkpoint=checkpoint, limit=limit, batch_size=args.batch_size,
                                       passes=passes, max_batch_frames=args.max_batch_frames,
                                       frame_budgets=tuple(int(b) for b in args.frame_budgets.split(",")
                                                           if b.strip()))
    if "2" in only:
        import pipeline_benches

        r = pipeline_benches.run(recipe=recipe, workspace=args.workspace, repeats=repeats,
                                 memory_repeats=1 if args.quick else repeats, weights=weights,
                                 report_dir=bench_dir / ("report_quick" if args.quick else "report"))
        r["recipe"] = str(recipe)
        results["benchmarks"]["2_to_5_pipeline"] = r
        _write(args.out, results)
        lines += pipeline_benches.summary(r)
        print("\n".join(pipeline_benches.summary(r)), flush=True)

    if "6" in only:
        import cache_bench

        recipe6 = args.recipe6 or (recipe if args.quick else _default_recipe6(recipe))
        r = cache_bench.run(recipe=recipe6, workdir=bench_dir, repeats=1 if args.quick else repeats)
        results["benchmarks"]["6_cached_vs_cold"] = r
        lines += cache_bench.summary(r)
        print("\n".join(cache_bench.summary(r)), flush=True)

    results["seconds"] = time.perf_counter() - t0
    results["load_average_at_end"] = os.getloadavg()
    _write(args.out, results)
    print("\n=== summary ===")
    print("\n".join(lines))
    print(f"\nresults: {args.out} ({results['seconds']:.0f} s; load average at start "
          f"{results['load_average_at_start'][0]:.1f}, at end {results['load_average_at_end'][0]:.1f} on "
          f"{os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

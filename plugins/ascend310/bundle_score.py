"""`porter score BUNDLE`: read the outputs an Ascend host wrote into a bundle through the normal pipeline.

It re-runs the recipe the bundle recorded with that bundle (porter.api.run_and_print, as `porter run --bundle`
does), so the returned outputs are parsed, scored and reported exactly as a local run's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from porter.api import InputError, read_report, run_and_print
from porter_ascend310.bundle import MANIFEST, BundleError, inside, read_manifest
from porter_ascend310.runners import RunLayout, has_outputs


def recipe_of_workspace(workspace: str | Path | None) -> str | None:
    """The recipe path recorded in a workspace's report.json, if it holds a readable one (bundles older than the
    manifest's own ``recipe``)."""
    if not workspace or not (Path(workspace) / "report.json").is_file():
        return None
    try:
        return read_report(Path(workspace) / "report.json").recipe or None
    except InputError:  # not a report porter can read: the user must name the recipe, as score_bundle says
        return None


def returned_runs(bundle: Path, manifest: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Run keys whose outputs came back, and those still waiting."""
    done: list[str] = []
    waiting: list[str] = []
    for run in manifest["runs"]:
        layout = RunLayout.from_json(run["layout"])
        (done if has_outputs(layout, inside(bundle, run["output_dir"])) else waiting).append(run["key"])
    return done, waiting


def score_bundle(bundle: Path, *, recipe: str | None = None, workspace: str | None = None,
                 force: bool = False) -> int:
    """Re-run the bundle's recipe with its bundle so the returned outputs go through the normal pipeline."""
    bundle = Path(bundle).resolve()
    manifest = read_manifest(bundle)
    workspace = workspace or manifest.get("workspace")
    recipe = recipe or manifest.get("recipe") or recipe_of_workspace(workspace)
    if not recipe:
        raise BundleError(f"{bundle / MANIFEST}: no recipe recorded; pass it: porter score {bundle} --recipe FILE")
    if not Path(recipe).is_file():
        raise BundleError(f"recipe {recipe} (recorded in {bundle / MANIFEST}) does not exist; pass --recipe FILE")
    done, waiting = returned_runs(bundle, manifest)
    print(f"porter score: {len(done)} of {len(done) + len(waiting)} runs in {bundle} have outputs"
          + (f"; still waiting for {', '.join(waiting)}" if waiting else ""))
    return run_and_print(recipe, workspace=Path(workspace) if workspace else None, bundle=bundle,
                         force=("run",) if force else None)


def add_score_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "score", help="score the outputs an Ascend host wrote into a bundle (after `bash run.sh` there)",
        description="Reads BUNDLE/manifest.json and re-runs the recorded recipe with --bundle BUNDLE, so the "
                    "outputs that came back are parsed and scored by the same pipeline and report as a local run.")
    parser.add_argument("bundle", type=Path, help="bundle folder written by `porter run --bundle`")
    parser.add_argument("--recipe", help="recipe file (default: the one recorded in the manifest)")
    parser.add_argument("--workspace", help="workspace folder (default: the one recorded in the manifest)")
    parser.add_argument("--force", action="store_true", help="re-read the outputs even if a run is cached")
    parser.set_defaults(func=lambda args: score_bundle(args.bundle, recipe=args.recipe,
                                                       workspace=args.workspace, force=args.force))



__all__ = ["score_bundle", "add_score_command", "returned_runs", "recipe_of_workspace"]

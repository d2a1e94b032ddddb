"""Issue 6's bad-input matrix, through `porter run` / `porter validate` / `porter score` on real recipes.

Every row of ROWS feeds porter one bad input and asserts exit code 2 (never a traceback), an error that names the
file and the field or tensor and says what was expected, and a workspace with no partial artifact. The tests after
the matrix cover inputs porter accepts on purpose (stereo audio, the resample option, transcript characters
outside the labels), a vendor tool that fails (its variant fails with the tool's stderr tail; exit 1, as for any
failed stage), and damaged files in the workspace's cache (computed again, never handed on).

Model-agnostic rows use the MLP test plugin (tests/core/mlp_porter.py); checkpoint and audio rows use the
deepspeech plugin with a tiny random checkpoint and one real utterance spoken by espeak-ng.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml

TESTS = Path(__file__).resolve().parents[1]
for _folder in (TESTS / "deepspeech", TESTS / "ascend310"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from fakes import toolbox as tb  # noqa: E402
from pipeline_support import speak, tiny_checkpoint  # noqa: E402

from porter.errors import EXIT_FAILURE, EXIT_TOOL_MISSING, EXIT_USAGE  # noqa: E402

CORE_DIR = TESTS / "core"
SPOKEN = "YES"
SAMPLE_RATE = 16000
# tiny_checkpoint(hidden=16): the first LSTM's input weights are [4 x 16, 1312]
TINY_HIDDEN = 16


@dataclass(frozen=True)
class Speech:
    """Built once per module: one real spoken utterance and a tiny DeepSpeech checkpoint."""

    wav: Path  # 16 kHz mono 16-bit
    checkpoint: Path

    def samples(self) -> np.ndarray:
        import soundfile as sf

        data, rate = sf.read(str(self.wav), dtype="int16")
        assert rate == SAMPLE_RATE and data.ndim == 1
        return data


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Speech:
    root = tmp_path_factory.mktemp("speech")
    return Speech(wav=speak(SPOKEN, root / "yes.wav"),
                  checkpoint=tiny_checkpoint(root / "tiny.ckpt", hidden=TINY_HIDDEN, layers=1))


class Case:
    """One row's folder: recipes, bad files and a workspace, and the porter CLI run in-process."""

    def __init__(self, root: Path, speech: Speech, mlp_checkpoint: Path, capsys, monkeypatch):
        self.root = root
        self.speech = speech
        self.mlp_checkpoint = mlp_checkpoint
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        self.workspace = root / "ws"

    def porter(self, *args) -> tuple[int, str, str]:
        from porter.cli.main import main

        self.capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def run_args(self, recipe: Path, *extra) -> tuple:
        return ("run", recipe, "--workspace", self.workspace, "--quiet", *extra)

    def write_recipe(self, recipe: dict | str) -> Path:
        path = self.root / "recipe.yaml"
        path.write_text(recipe if isinstance(recipe, str) else yaml.safe_dump(recipe, sort_keys=False))
        return path

    def mlp_recipe(self, **overrides) -> Path:
        shutil.copy(CORE_DIR / "mlp_porter.py", self.root / "mlp_porter.py")
        recipe = {
            "name": "mlp_bad",
            "plugins": ["mlp_porter"],
            "model": {"name": "mlp", "options": {"checkpoint": str(self.mlp_checkpoint), "hidden": 16}},
            "dataset": {"name": "blobs", "options": {"n": 12}},
            "target": {"name": "onnxruntime", "flags": {"warmup": 1}},
            "metrics": ["error_rate"],
            "variants": {"torch": {"reference": True}, "ort": {}},
        }
        recipe.update(overrides)
        return self.write_recipe(recipe)

    def ds_recipe(self, *, checkpoint: Path | str | None = None, manifest: Path | None = None,
                  **model_options) -> Path:
        recipe = {
            "name": "ds_bad",
            "model": {"name": "deepspeech",
                      "options": {"checkpoint": str(checkpoint or self.speech.checkpoint), **model_options},
                      "export": {"static_length": 200}},
            "dataset": {"name": "an4", "options": {"manifest": str(manifest or self.manifest())}},
            "target": {"name": "onnxruntime"},
            "metrics": ["wer", "cer"],
            "variants": {"pytorch": {"reference": True}},
        }
        return self.write_recipe(recipe)

    def manifest(self, *, audio="speech", transcript: bytes | None = SPOKEN.encode()) -> Path:
        """A V3 JSON manifest of one utterance. ``audio``: "speech" (the spoken wav), None (missing file),
        raw bytes, or (int16 samples, rate); ``transcript``: the .txt bytes, or None for a missing file."""
        import soundfile as sf

        data = self.root / "data"
        data.mkdir(exist_ok=True)
        wav, txt = data / "utt.wav", data / "utt.txt"
        if isinstance(audio, str):
            shutil.copy(self.speech.wav, wav)
        elif isinstance(audio, bytes):
            wav.write_bytes(audio)
        elif audio is not None:
            samples, rate = audio
            sf.write(str(wav), samples, rate, subtype="PCM_16")
        if transcript is not None:
            txt.write_bytes(transcript)
        path = data / "manifest.json"
        path.write_text(json.dumps({"root_path": ".", "samples": [{"wav_path": wav.name,
                                                                     "transcript_path": txt.name}]}))
        return path


@pytest.fixture
def case(tmp_path, speech, mlp_checkpoint, capsys, monkeypatch) -> Case:
    return Case(tmp_path, speech, mlp_checkpoint, capsys, monkeypatch)


def assert_no_partial_artifacts(workspace: Path) -> None:
    """Every artifact folder is complete (has artifact.json); no stage's temporary work folder is left."""
    artifacts = workspace / "artifacts"
    if not artifacts.is_dir():
        return
    for stage in artifacts.iterdir():
        for entry in stage.iterdir():
            assert not entry.name.startswith(".tmp-"), f"left-over work folder {entry}"
            assert (entry / "artifact.json").is_file(), f"artifact folder without artifact.json: {entry}"


def error_text(err: str) -> str:
    assert "porter: error: " in err, err
    return err[err.index("porter: error: "):]


# ---------------------------------------------------------------------------------------------------------
# The matrix: one row per bad input, each exit 2
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    args: tuple  # the porter command line
    file: Path  # the file (or folder) the error must name
    says: tuple[str, ...]  # the field or tensor, the bad value, what was expected
    after: Callable[[], None] | None = None  # further checks once porter has returned


ROWS: dict[str, Callable[[Case], Expect]] = {}


def row(function: Callable[[Case], Expect]) -> Callable[[Case], Expect]:
    ROWS[function.__name__] = function
    return function


# --- recipes (MLP plugin) ---------------------------------------------------------------------------------

@row
def malformed_yaml(c: Case) -> Expect:
    path = c.write_recipe("name: demo\nmodel: {name: mlp\n  options: [\n")
    return Expect(("validate", path), path, ("malformed YAML at line 3", "expected ',' or '}'"))


@row
def empty_recipe(c: Case) -> Expect:
    path = c.write_recipe("")
    return Expect(("validate", path), path, ("the recipe is empty", "expected a mapping with model"))


@row
def unknown_top_level_key(c: Case) -> Expect:
    path = c.mlp_recipe(variant={"ort": {}})
    return Expect(("validate", path), path, ("variant: unknown key 'variant'", "did you mean 'variants'?"))


@row
def wrong_option_type(c: Case) -> Expect:
    path = c.mlp_recipe(dataset={"name": "blobs", "options": {"n": "twelve"}})
    return Expect(c.run_args(path), path, ("dataset.options.n", "expected int", "'twelve'"))


@row
def wrong_section_type(c: Case) -> Expect:
    path = c.mlp_recipe(variants=["torch", "ort"])
    return Expect(("validate", path), path, ("variants: expected a mapping", "got list"))


@row
def unknown_plugin_module(c: Case) -> Expect:
    path = c.mlp_recipe(plugins=["mlp_portr"])
    return Expect(c.run_args(path), path, ("plugins[0]", "'mlp_portr' not found", "did you mean 'mlp_porter'?"))


@row
def unknown_model(c: Case) -> Expect:
    path = c.mlp_recipe(model={"name": "mpl", "options": {"checkpoint": str(c.mlp_checkpoint)}})
    return Expect(("validate", path), path, ("model.name", "unknown model 'mpl'", "did you mean 'mlp'?"))


@row
def unknown_dataset(c: Case) -> Expect:
    path = c.mlp_recipe(dataset={"name": "blob"})
    return Expect(("validate", path), path, ("dataset.name", "unknown dataset 'blob'", "did you mean 'blobs'?"))


@row
def unknown_pass(c: Case) -> Expect:
    path = c.mlp_recipe(graph_fix=["scale_logit"])
    return Expect(("validate", path), path,
                  ("graph_fix[0].name", "unknown graph pass 'scale_logit'", "did you mean 'scale_logits'?"))


@row
def unknown_target(c: Case) -> Expect:
    path = c.mlp_recipe(target={"name": "onnxruntim"})
    return Expect(c.run_args(path), path,
                  ("target.name", "unknown target 'onnxruntim'", "did you mean 'onnxruntime'?"))


@row
def unknown_flag(c: Case) -> Expect:
    path = c.mlp_recipe(target={"name": "onnxruntime", "flags": {"warmpu": 1}})
    return Expect(("validate", path), path,
                  ("target.flags.warmpu", "unknown flag 'warmpu'", "did you mean 'warmup'?"))


@row
def empty_dataset(c: Case) -> Expect:
    path = c.mlp_recipe(dataset={"name": "blobs", "options": {"n": 0}})
    return Expect(c.run_args(path), path, ("dataset.options", "produced no samples", "expected at least one",
                                           "preprocess stage"))


@row
def workspace_under_a_regular_file(c: Case) -> Expect:
    # tests run as root, which may write into any folder: a regular file in the way is unwritable for anyone
    blocker = c.root / "not_a_folder"
    blocker.write_text("a file")
    path = c.mlp_recipe()
    c.workspace = blocker / "ws"
    return Expect(c.run_args(path), c.workspace, (f"{blocker} is a file, not a folder",
                                                  "expected a folder porter can write to", "--workspace"))


@row
def out_folder_under_a_regular_file(c: Case) -> Expect:
    blocker = c.root / "not_a_folder"
    blocker.write_text("a file")
    path = c.mlp_recipe()
    out = blocker / "reports"
    return Expect(c.run_args(path, "--out", out), out, ("report.json", f"{blocker} is a file, not a folder",
                                                        "expected a folder porter can write to"))


# --- recipes: YAML that hangs or hides a value, sections of the wrong type, numbers out of range (issue 23) ---

ALIAS_BOMB = "\n".join(
    ["name: bomb", "a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    + ["graph_fix: [{name: onnxoptimizer, options: {passes: *a8}}]"]) + "\n"


@row
def yaml_alias_bomb(c: Case) -> Expect:
    # 9 ** 9 strings once expanded; refused when read, before anything copies or hashes it
    path = c.write_recipe(ALIAS_BOMB)
    return Expect(c.run_args(path), path, ("expands to more than 100,000 values", "alias bomb"))


@row
def yaml_alias_bomb_validate(c: Case) -> Expect:
    path = c.write_recipe(ALIAS_BOMB)
    return Expect(("validate", path), path, ("expands to more than 100,000 values",))


@row
def yaml_recursive_alias(c: Case) -> Expect:
    path = c.write_recipe("name: loop\ngraph_fix: &g [cleanup, *g]\n")
    return Expect(("validate", path), path, ("the anchor at line 2 contains an alias to itself",))


@row
def duplicate_key_in_a_section(c: Case) -> Expect:
    path = c.mlp_recipe()
    text = path.read_text().replace("  name: onnxruntime\n", "  name: onnxruntime\n  name: ascend310\n")
    path.write_text(text)
    first = text.splitlines().index("  name: onnxruntime") + 1
    return Expect(("validate", path), path, (f"duplicate key 'name' at line {first + 1} (first at line {first})",))


@row
def duplicate_reference_key(c: Case) -> Expect:
    path = c.mlp_recipe(variants={"torch": {"reference": True}, "ort": {}})
    text = path.read_text().replace("    reference: true\n", "    reference: true\n    reference: false\n")
    path.write_text(text)
    first = text.splitlines().index("    reference: true") + 1
    return Expect(c.run_args(path), path, (f"duplicate key 'reference' at line {first + 1} (first at line {first})",))


@row
def recipe_path_is_a_folder(c: Case) -> Expect:
    c.mlp_recipe()
    return Expect(("validate", c.root), c.root, ("is a folder, not a recipe file", "expected a YAML recipe",
                                                 str(c.root / "recipe.yaml")))


@row
def target_flags_a_list(c: Case) -> Expect:
    path = c.mlp_recipe(target={"name": "onnxruntime", "flags": ["warmup", 1]})
    return Expect(("validate", path), path, ("target.flags", "expected a mapping of flags", "got list"))


@row
def dataset_options_a_string(c: Case) -> Expect:
    path = c.mlp_recipe(dataset={"name": "blobs", "options": "n=12"})
    return Expect(("validate", path), path, ("dataset.options", "expected a mapping of options", "got str"))


@row
def dataset_options_an_int(c: Case) -> Expect:
    path = c.mlp_recipe(dataset={"name": "blobs", "options": 12})
    return Expect(c.run_args(path), path, ("dataset.options", "expected a mapping of options", "got int 12"))


def _flag_row(c: Case, flag: str, value, expected: str) -> Expect:
    path = c.mlp_recipe(target={"name": "onnxruntime", "flags": {flag: value}})
    return Expect(("validate", path), path, (f"target.flags.{flag}", f"{value!r} is out of range", expected))


@row
def batch_size_negative(c: Case) -> Expect:
    return _flag_row(c, "batch_size", -1, "expected an int from 1 to 65536")


@row
def batch_size_zero(c: Case) -> Expect:
    return _flag_row(c, "batch_size", 0, "expected an int from 1 to 65536")


@row
def max_batch_frames_negative(c: Case) -> Expect:
    return _flag_row(c, "max_batch_frames", -5, "expected an int from 0 to")


@row
def intra_op_threads_negative(c: Case) -> Expect:
    return _flag_row(c, "intra_op_threads", -5, "expected an int from 0 to 1024")


@row
def warmup_negative(c: Case) -> Expect:
    return _flag_row(c, "warmup", -7, "expected an int from 0 to 10000")


@row
def pass_tolerance_negative(c: Case) -> Expect:
    path = c.mlp_recipe(graph_fix=[{"name": "cleanup", "tolerance": -1e-3}])
    return Expect(("validate", path), path, ("graph_fix[0].tolerance", "expected a non-negative number"))


@row
def static_length_huge(c: Case) -> Expect:
    path = c.ds_recipe()
    recipe = yaml.safe_load(path.read_text())
    recipe["model"]["export"]["static_length"] = 10 ** 23
    c.write_recipe(recipe)
    return Expect(("validate", path), path, ("model.export.static_length", "100000000000000000000000 is out of "
                                             "range", "expected an int from 1 to 100000"))


@row
def static_length_as_an_exponent(c: Case) -> Expect:
    path = c.ds_recipe()
    path.write_text(path.read_text().replace("static_length: 200", "static_length: 1e23"))
    return Expect(("validate", path), path, ("model.export.static_length", "expected int, got str '1e23'",
                                             "write a whole number"))


@row
def opset_unsupported(c: Case) -> Expect:
    path = c.ds_recipe()
    recipe = yaml.safe_load(path.read_text())
    recipe["model"]["export"]["opset"] = 99
    c.write_recipe(recipe)
    return Expect(("validate", path), path, ("model.export.opset", "99 is out of range",
                                             "expected an int from 7 to 20"))


# --- budgets and variant selection ----------------------------------------------------------------------

@row
def recipe_budget_unknown_quantity(c: Case) -> Expect:
    path = c.mlp_recipe(budgets=["foo>1"])
    return Expect(("validate", path), path, ("budgets[0]", "budget 'foo>1': unknown quantity 'foo'",
                                             "known: compile_s"))


@row
def recipe_budget_unknown_variant(c: Case) -> Expect:
    path = c.mlp_recipe(budgets=["ortt:p99_ms<40"])
    return Expect(("validate", path), path, ("budgets[0]", "names variant 'ortt'", "did you mean 'ort'?"))


@row
def cli_budget_unknown_quantity(c: Case) -> Expect:
    # the example `porter run --help` used to give; refused before any stage runs
    path = c.mlp_recipe()
    return Expect(c.run_args(path, "--budget", "error_rate_delta<=0.5"), path,
                  ("--budget", "unknown quantity 'error_rate_delta'", "did you mean 'delta_error_rate'?"),
                  after=lambda: _assert_absent(c.workspace / "artifacts"))


def _report_kept(c: Case, path: Path) -> Callable[[], None]:
    """Run ``path`` once for real; the returned check says the bad run left that run's report.json alone."""
    code, out, err = c.porter(*c.run_args(path))
    assert code == 0, out + err
    before = (c.workspace / "report.json").read_bytes()

    def kept():
        assert (c.workspace / "report.json").read_bytes() == before, "report.json was overwritten"
    return kept


@row
def unknown_variant_selected(c: Case) -> Expect:
    path = c.mlp_recipe()
    kept = _report_kept(c, path)
    return Expect(c.run_args(path, "--variant", "ortt"), path,
                  ("--variant", "unknown variant 'ortt'", "did you mean 'ort'?", "known: ort, torch"), after=kept)


@row
def compare_budget_naming_a_missing_variant(c: Case) -> Expect:
    path = c.mlp_recipe()
    code, out, err = c.porter(*c.run_args(path, "--out", c.root / "a"))
    assert code == 0, out + err
    report = c.root / "a" / "report.json"
    return Expect(("compare", report, report, "--budget", "nosuch:error_rate<=1"), report,
                  ("--budget", "names variant 'nosuch'", "variants: torch, ort"))


@row
def symlink_loop_as_a_path_option(c: Case) -> Expect:
    (c.root / "loop.ckpt").symlink_to("loop.ckpt")
    path = c.mlp_recipe()
    text = path.read_text().replace(str(c.mlp_checkpoint), "loop.ckpt")  # relative: resolved next to the recipe
    path.write_text(text)
    return Expect(("validate", path), path, ("model.options.checkpoint", "cannot be resolved",
                                             "not a loop of symbolic links"))


@row
def symlink_loop_as_the_workspace(c: Case) -> Expect:
    (c.root / "ws_loop").symlink_to("ws_loop")
    path = c.mlp_recipe(workspace="ws_loop")
    return Expect(("validate", path), path, ("workspace", "cannot be resolved", "not a loop of symbolic links"))


# --- Dask scheduler addresses (checked before Dask would wait on them) ---------------------------------

@row
def dask_scheduler_file_missing(c: Case) -> Expect:
    path = c.mlp_recipe()
    missing = c.root / "missing.json"
    return Expect(c.run_args(path, "--executor", "dask", "--address", missing), missing,
                  ("scheduler file not found", "--address", "dask scheduler --scheduler-file"))


@row
def recipe_scheduler_file_missing(c: Case) -> Expect:
    path = c.mlp_recipe(executor="dask", address="missing.json")  # relative: next to the recipe
    return Expect(("validate", path), c.root / "missing.json", ("scheduler file not found (address)",))


@row
def dask_address_an_int(c: Case) -> Expect:
    path = c.mlp_recipe(executor="dask", address=12345)
    return Expect(("validate", path), path, ("address: expected a Dask scheduler address", "got int 12345"))


@row
def dask_address_unknown_protocol(c: Case) -> Expect:
    path = c.mlp_recipe()
    return Expect(c.run_args(path, "--executor", "dask", "--address", "foo://x"), path,
                  ("--address", "unknown protocol 'foo' in 'foo://x'", "tcp://10.0.0.10:8786"))


@row
def scheduler_file_that_is_not_one(c: Case) -> Expect:
    fake = c.root / "scheduler.json"
    fake.write_text(json.dumps({"hello": "world"}))
    path = c.mlp_recipe()
    return Expect(c.run_args(path, "--executor", "dask", "--address", fake), fake,
                  ("not a Dask scheduler file", "no \"address\" string"))


@row
def scheduler_file_not_json(c: Case) -> Expect:
    fake = c.root / "scheduler.json"
    fake.write_text("tcp://127.0.0.1:8786")
    path = c.mlp_recipe(executor="dask", address=str(fake))
    return Expect(("validate", path), fake, ("not a Dask scheduler file", "cannot read it as JSON"))


# --- security: names and bundle paths that would leave their folder ----------------------------------------

@row
def recipe_name_with_parent_dirs(c: Case) -> Expect:
    (c.root / "project").mkdir()
    c.root = c.root / "project"
    path = c.mlp_recipe(name="../../escaped")
    # the default workspace is <recipe dir>/.porter/<name>; ../../escaped would land beside the project
    return Expect(("run", path, "--quiet"), path, ("name: bad recipe name '../../escaped'", "no path separators"),
                  after=lambda: _assert_absent(c.root.parent / "escaped"))


@row
def variant_name_with_parent_dirs(c: Case) -> Expect:
    path = c.mlp_recipe(variants={"torch": {"reference": True}, "../../escaped": {}})
    return Expect(c.run_args(path), path, ("variants.../../escaped", "bad variant name", "it becomes a folder name"),
                  after=lambda: _assert_absent(c.root.parent / "escaped"))


@row
def om_name_leaving_the_bundle(c: Case) -> Expect:
    tb.no_tools(c.root / "tools", c.monkeypatch)
    bundle = c.root / "deep" / "bundle"
    path = c.mlp_recipe(variants={"npu": {"target": {"name": "ascend310", "flags": {"om_name": "../../evil"}}}})
    return Expect(c.run_args(path, "--bundle", bundle), path,
                  ("target.flags.om_name", "'../../evil'", "expected a plain file name", "compile stage"),
                  after=lambda: _assert_absent(*c.root.rglob("evil*")))


@row
def bundle_manifest_path_leaving_the_bundle(c: Case) -> Expect:
    tb.no_tools(c.root / "tools", c.monkeypatch)
    bundle = c.root / "deep" / "bundle"
    path = c.mlp_recipe(variants={"npu": {"target": {"name": "ascend310"}}})
    code, out, err = c.porter(*c.run_args(path, "--bundle", bundle))
    assert code == EXIT_TOOL_MISSING, out + err
    manifest_path = bundle / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["runs"][0]["output_dir"] = "../../escaped"  # a bundle tampered with on its way back
    manifest_path.write_text(json.dumps(manifest))
    return Expect(("score", bundle), bundle, ("refusing path '../../escaped'", "stay inside"),
                  after=lambda: _assert_absent(c.root / "escaped", bundle.parent.parent / "escaped"))


def _assert_absent(*paths: Path) -> None:
    for p in paths:
        assert not p.exists(), f"{p} was created outside its folder"


# --- checkpoints (deepspeech plugin) -----------------------------------------------------------------------

@row
def missing_checkpoint(c: Case) -> Expect:
    path = c.ds_recipe(checkpoint=c.root / "nowhere.ckpt")
    return Expect(("validate", path), path, ("model.options.checkpoint", f"file not found: {c.root / 'nowhere.ckpt'}",
                                             "expected V3 Lightning .ckpt"))


@row
def truncated_checkpoint(c: Case) -> Expect:
    checkpoint = c.root / "truncated.ckpt"
    whole = c.speech.checkpoint.read_bytes()
    checkpoint.write_bytes(whole[:len(whole) // 2])
    return Expect(c.run_args(c.ds_recipe(checkpoint=checkpoint)), checkpoint,
                  ("not a readable PyTorch checkpoint", "expected a V3 .ckpt or a torch-saved state_dict"))


@row
def checkpoint_tensors_not_fitting_its_config(c: Case) -> Expect:
    import torch

    checkpoint = c.root / "mismatch.ckpt"
    data = torch.load(str(c.speech.checkpoint), weights_only=True)
    data["hyper_parameters"]["model_cfg"]["hidden_size"] = 2 * TINY_HIDDEN  # the tensors stay at 16
    torch.save(data, str(checkpoint))

    def refused_before_preprocessing():
        assert not list(c.workspace.glob("artifacts/*/*")), "audio was preprocessed for an unusable checkpoint"

    return Expect(c.run_args(c.ds_recipe(checkpoint=checkpoint)), checkpoint,
                  ("rnns.0.rnn.weight_ih_l0", f"has shape [{4 * TINY_HIDDEN}, 1312]",
                   f"expects [{8 * TINY_HIDDEN}, 1312]", "hidden_size=32", "preprocess stage"),
                  after=refused_before_preprocessing)


class _RunsAShellCommand:
    """Unpickling this calls os.system: the payload a malicious checkpoint carries."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _payload_row(c: Case, save) -> Expect:
    import torch

    marker = c.root / "payload-ran"
    checkpoint = c.root / "payload.ckpt"
    data = torch.load(str(c.speech.checkpoint), weights_only=True)
    data["callbacks"] = _RunsAShellCommand(f"touch {marker}")
    save(data, checkpoint)

    def payload_did_not_run():
        assert not marker.exists(), "the checkpoint's pickled code ran"

    return Expect(c.run_args(c.ds_recipe(checkpoint=checkpoint)), checkpoint,
                  ("names the global posix.system", "could run code", "refused"), after=payload_did_not_run)


@row
def checkpoint_with_code_execution_payload(c: Case) -> Expect:
    import torch

    return _payload_row(c, lambda data, path: torch.save(data, str(path)))


@row
def plain_pickle_with_code_execution_payload(c: Case) -> Expect:
    def save(data, path):
        # a pre-zip (legacy) torch file is a bare pickle; the payload comes first, before any tensor
        with open(path, "wb") as handle:
            pickle.dump({"callbacks": data["callbacks"], "hyper_parameters": data["hyper_parameters"]}, handle,
                        protocol=2)

    return _payload_row(c, save)


# --- audio -------------------------------------------------------------------------------------------------

@row
def audio_at_another_sample_rate(c: Case) -> Expect:
    import librosa

    slow = librosa.resample(c.speech.samples() / 32768.0, orig_sr=SAMPLE_RATE, target_sr=8000)
    manifest = c.manifest(audio=((slow * 32767).astype(np.int16), 8000))
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest.parent / "utt.wav",
                  ("sample rate 8000 Hz", "expected 16000 Hz", "resample: true"))


@row
def empty_audio(c: Case) -> Expect:
    manifest = c.manifest(audio=(np.zeros(0, np.int16), SAMPLE_RATE))
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest.parent / "utt.wav",
                  ("holds no samples", "expected a non-empty 16 kHz wav"))


@row
def audio_shorter_than_a_window(c: Case) -> Expect:
    manifest = c.manifest(audio=(c.speech.samples()[:100], SAMPLE_RATE))
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest.parent / "utt.wav",
                  ("audio has 100 samples", "expected at least 161"))


@row
def silent_audio(c: Case) -> Expect:
    manifest = c.manifest(audio=(np.zeros(SAMPLE_RATE, np.int16), SAMPLE_RATE))
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest.parent / "utt.wav",
                  ("digital silence", "expected a recording with sound"))


@row
def not_audio_at_all(c: Case) -> Expect:
    manifest = c.manifest(audio=b"these are words, not samples\n")
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest.parent / "utt.wav",
                  ("cannot read audio", "expected a 16 kHz mono 16-bit wav"))


# --- transcripts and manifests -----------------------------------------------------------------------------

@row
def missing_transcript(c: Case) -> Expect:
    manifest = c.manifest(transcript=None)
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest,
                  ("samples[0]", f"transcript file {manifest.parent / 'utt.txt'} does not exist",
                   "expected a UTF-8 text file"))


@row
def non_utf8_transcript(c: Case) -> Expect:
    manifest = c.manifest(transcript="YES ÉTÉ".encode("latin-1"))
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest.parent / "utt.txt",
                  ("transcript is not UTF-8", "byte 0xc9 at offset 4", "expected UTF-8"))


@row
def manifest_pointing_at_missing_audio(c: Case) -> Expect:
    manifest = c.manifest(audio=None)
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest,
                  ("samples[0]", f"audio file {manifest.parent / 'utt.wav'} does not exist", "expected a 16 kHz wav"))


@row
def manifest_with_no_utterances(c: Case) -> Expect:
    manifest = c.root / "empty_manifest.json"
    manifest.write_text(json.dumps({"root_path": ".", "samples": []}))
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest,
                  ("lists no utterances", "expected at least one wav/transcript pair"))


@row
def manifest_not_json(c: Case) -> Expect:
    manifest = c.root / "broken_manifest.json"
    manifest.write_text('{"root_path": ".", "samples": [')
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest,
                  ("not valid JSON", "expected a V3 manifest with root_path and samples"))


@pytest.mark.parametrize("name", list(ROWS))
def test_bad_input_exits_2_naming_file_field_and_expectation(name, case):
    expect = ROWS[name](case)
    code, out, err = case.porter(*expect.args)
    assert code == EXIT_USAGE, out + err
    assert "Traceback" not in out + err
    message = error_text(err)
    assert str(expect.file) in message, message
    for fragment in expect.says:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert_no_partial_artifacts(case.workspace)
    if expect.after is not None:
        expect.after()


def test_the_matrix_has_at_least_twenty_rows():
    assert len(ROWS) >= 20


def test_workspace_in_an_immutable_folder(case):
    """A folder nobody may write to, root included (chattr +i), where the file system supports it."""
    locked = case.root / "locked"
    locked.mkdir()
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(locked)],
                                                          capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        case.workspace = locked / "ws"
        code, out, err = case.porter(*case.run_args(case.mlp_recipe()))
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    assert code == EXIT_USAGE, out + err
    message = error_text(err)
    assert str(case.workspace) in message and "expected a folder porter can write to" in message
    assert not case.workspace.exists()


# ---------------------------------------------------------------------------------------------------------
# Inputs porter accepts on purpose, as the reference does
# ---------------------------------------------------------------------------------------------------------


def _preprocessed(workspace: Path) -> tuple[dict, list]:
    """The preprocess artifact's InputSet description and its samples' spectrograms."""
    from porter.artifacts import read_sample

    (folder,) = [p for p in (workspace / "artifacts" / "preprocess").iterdir()]
    description = json.loads((folder / "artifact.json").read_text())["value"]
    return description, [read_sample(folder, i)["spect"] for i in range(len(description["sample_ids"]))]


def test_stereo_audio_is_averaged_over_channels_as_the_reference_does(case):
    from porter_deepspeech.features import spectrogram

    left = case.speech.samples()
    right = (left // 3).astype(np.int16)  # a different second channel, so averaging is visible
    manifest = case.manifest(audio=(np.stack([left, right], axis=1), SAMPLE_RATE))
    code, out, err = case.porter(*case.run_args(case.ds_recipe(manifest=manifest)))
    assert code == 0, out + err
    _, (spect,) = _preprocessed(case.workspace)
    # V3 loads int16 / 32768 per channel and takes the mean over channels
    mono = ((left.astype(np.float32) / 32768.0) + (right.astype(np.float32) / 32768.0)) / 2
    np.testing.assert_allclose(spect[0, 0], spectrogram(mono), atol=1e-5)
    assert not np.allclose(spect[0, 0], spectrogram(left.astype(np.float32) / 32768.0), atol=1e-3)


def test_resample_option_converts_other_sample_rates(case):
    import soundfile as sf

    wav_22k = case.root / "yes_22k.wav"
    subprocess.run(["sox", str(case.speech.wav), "-r", "22050", str(wav_22k)], check=True, capture_output=True)
    samples, rate = sf.read(str(wav_22k), dtype="int16")
    manifest = case.manifest(audio=(samples, rate))
    refused, out, err = case.porter(*case.run_args(case.ds_recipe(manifest=manifest)))
    assert refused == EXIT_USAGE and "sample rate 22050 Hz" in err
    code, out, err = case.porter(*case.run_args(case.ds_recipe(manifest=manifest, resample=True)))
    assert code == 0, out + err
    description, (spect,) = _preprocessed(case.workspace)
    seconds = len(case.speech.samples()) / SAMPLE_RATE
    # 100 frames a second at 16 kHz, whatever rate the file had
    assert abs(spect.shape[-1] - (1 + int(seconds * 100))) <= 1
    assert description["details"]["sample_rate"] == SAMPLE_RATE


@pytest.mark.slow
def test_transcript_characters_outside_the_labels_are_dropped_and_reported(case):
    manifest = case.manifest(transcript="YES! 42 ÉTÉ".encode())
    code, out, err = case.porter(*case.run_args(case.ds_recipe(manifest=manifest)))
    assert code == 0, out + err
    description, _ = _preprocessed(case.workspace)
    # the reference keeps only characters with a label (and not the blank): "YES  T" remains
    assert description["references"] == ["YES  T"]
    assert description["details"]["dropped_characters"] == {
        "count": 5, "utterances": 1, "characters": {"É": 2, "!": 1, "4": 1, "2": 1}}
    assert "dropped 5 transcript character(s)" in err and "'É' x2" in err
    report = json.loads((case.workspace / "report.json").read_text())
    assert [s["reference"] for s in report["variants"][0]["samples"]] == ["YES  T"]
    # the plugin's note reaches the report through the generic InputSet.notes, not a name the core knows
    note = "dropped 5 transcript character(s) the labels cannot express, in 1 of 1 utterance(s)"
    assert any(n.startswith(note) for n in report["variants"][0]["notes"])
    assert note in (case.workspace / "report.md").read_text()
    assert note in " ".join(out.split())  # and under the table, where it may be wrapped


# ---------------------------------------------------------------------------------------------------------
# A vendor tool that fails, and damaged files in the cache
# ---------------------------------------------------------------------------------------------------------


def test_failing_device_tool_fails_its_variant_and_shows_its_stderr_tail(case):
    tb.install(case.root / "tools", case.monkeypatch, tools=("atc", "msame"))
    case.monkeypatch.setenv(tb.FAIL_VARIABLE, "atc")  # fake_atc prints 30 noise lines, then the error, exit 3
    path = case.mlp_recipe(variants={"ort": {}, "npu": {"target": {"name": "ascend310"}}})
    code, out, err = case.porter(*case.run_args(path))
    # a stage that fails is exit 1 (README: exit codes); the other variants still run and are reported
    assert code == EXIT_FAILURE, out + err
    assert "Traceback" not in out + err
    variants = {v["name"]: v for v in json.loads((case.workspace / "report.json").read_text())["variants"]}
    assert variants["ort"]["status"] == "ok"
    npu = variants["npu"]
    assert npu["status"] == "failed"
    assert "stage 'compile' failed in plugin 'ascend310'" in npu["message"]
    assert "atc exited with status 3" in npu["message"]
    assert "E19999: atc fake failure" in npu["message"]  # the tool's last stderr line
    assert "noise line 29" in npu["message"] and "noise line 5\n" not in npu["message"]  # a tail, not all
    assert "E19999: atc fake failure" in out  # printed under the table
    assert_no_partial_artifacts(case.workspace)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "same_size_garbage"])
def test_damaged_onnx_in_the_cache_is_computed_again(case, damage):
    path = case.mlp_recipe()
    code, out, err = case.porter(*case.run_args(path))
    assert code == 0, out + err
    before = json.loads((case.workspace / "report.json").read_text())
    (model,) = (case.workspace / "artifacts" / "export").glob("*/*.onnx")
    whole = model.read_bytes()
    model.write_bytes(whole[:len(whole) // 2] if damage == "truncated" else bytes(len(whole)))

    code, out, err = case.porter(*case.run_args(path))
    assert code == 0, out + err
    assert f"the cached export artifact in {model.parent} was changed" in err
    after = json.loads((case.workspace / "report.json").read_text())
    assert after["stage_counts"]["computed"] == 1  # only the export; what used it is still valid
    assert [v["metrics"] for v in after["variants"]] == [v["metrics"] for v in before["variants"]]
    assert [v["artifacts"] for v in after["variants"]] == [v["artifacts"] for v in before["variants"]]
    assert model.read_bytes() == whole
    assert_no_partial_artifacts(case.workspace)


def _corrupt_value(value: dict) -> None:
    value["__type__"] = "NotAType"


@pytest.mark.parametrize("damage", [
    pytest.param(lambda meta: _corrupt_value(meta["value"]), id="unknown_type"),
    pytest.param(lambda meta: meta.pop("value"), id="value_removed"),
    pytest.param(lambda meta: meta["value"].pop("path"), id="required_field_removed"),
    pytest.param(lambda meta: meta["value"].update(path=5), id="path_not_a_path"),
    pytest.param(lambda meta: meta.update(seconds="fast"), id="timing_not_a_number"),
    pytest.param(lambda meta: meta.clear() or meta.update(value=7), id="value_not_an_artifact"),
])
@pytest.mark.slow
def test_undecodable_artifact_json_in_the_cache_is_computed_again(case, damage):
    """A cached artifact.json that is valid JSON but not what porter wrote heals: one note, then recomputed."""
    path = case.mlp_recipe()
    code, out, err = case.porter(*case.run_args(path))
    assert code == 0, out + err
    before = json.loads((case.workspace / "report.json").read_text())
    (meta_path,) = (case.workspace / "artifacts" / "export").glob("*/artifact.json")
    meta = json.loads(meta_path.read_text())
    damage(meta)
    meta_path.write_text(json.dumps(meta))

    code, out, err = case.porter(*case.run_args(path))
    assert code == 0, out + err
    assert "Traceback" not in out + err
    notes = [line for line in err.splitlines() if "cached export artifact" in line]
    assert len(notes) == 1 and f"{meta_path.parent} cannot be read" in notes[0] and "computing it again" in notes[0]
    after = json.loads((case.workspace / "report.json").read_text())
    assert after["stage_counts"]["computed"] == 1  # only the export
    assert [v["metrics"] for v in after["variants"]] == [v["metrics"] for v in before["variants"]]
    # healed for good: the next run reads it from the cache without a word
    code, out, err = case.porter(*case.run_args(path))
    assert code == 0 and "cached export artifact" not in err
    assert json.loads((case.workspace / "report.json").read_text())["stage_counts"]["computed"] == 0


def test_artifact_json_that_is_not_json_is_computed_again(case):
    path = case.mlp_recipe()
    assert case.porter(*case.run_args(path))[0] == 0
    (meta_path,) = (case.workspace / "artifacts" / "export").glob("*/artifact.json")
    meta_path.write_text('{"value": ')
    code, out, err = case.porter(*case.run_args(path))
    assert code == 0, out + err
    assert f"{meta_path.parent} cannot be read: artifact.json is not JSON" in err


@pytest.mark.slow
def test_a_scheduler_nobody_answers_fails_within_the_connect_timeout(case):
    """A well-formed scheduler file whose scheduler is gone: exit 1 naming the address, within
    PORTER_DASK_CONNECT_TIMEOUT (README: Sweeps on a Dask cluster), not a wait without end."""
    import socket
    import time

    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scheduler_file = case.root / "scheduler.json"
    scheduler_file.write_text(json.dumps({"type": "Scheduler", "address": f"tcp://127.0.0.1:{port}",
                                          "workers": {}}))
    case.monkeypatch.setenv("PORTER_DASK_CONNECT_TIMEOUT", "3")
    started = time.monotonic()
    code, out, err = case.porter(*case.run_args(case.mlp_recipe(), "--executor", "dask", "--address",
                                                scheduler_file))
    assert code == EXIT_FAILURE, out + err
    assert time.monotonic() - started < 30
    assert "Traceback" not in out + err
    assert str(scheduler_file) in err and "within 3 s" in err
    assert not (case.workspace / "report.json").exists()

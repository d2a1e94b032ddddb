"""The terminal table: fits the width it is given, --wide shows every column, piped output is plain."""
from __future__ import annotations

import io
import re

import pytest

from porter.console import StageProgress
from porter.report.model import Latency, RunReport, StageRecord, VariantReport
from porter.report.pareto import mark_pareto
from porter.report.table import PIPED_WIDTH, render_table, table_columns, terminal_width

ANSI = re.compile(r"\033\[")
BUNDLE = "/home/someone/projects/porter/out/ascend_bundle_for_the_device_machine"


def _stages(n: int, hits: int = 0) -> list[StageRecord]:
    return [StageRecord(f"k{i}", "run", "p", "l", i < hits) for i in range(n)]


def wide_report() -> RunReport:
    """Eight variants like the default recipe's and OpenVINO's: long names, many metrics and subsets, a path."""
    metrics = {"wer": 15.3, "cer": 7.1, "wer/unseen_voices": 3.7, "cer/unseen_voices": 1.6,
               "wer/unseen_engine": 26.1, "cer/unseen_engine": 13.2}

    def variant(name, target, flags=None, reference=False, status="ok", message="", p50=40.0):
        flags = {} if reference else {"warmup": 2, **(flags or {})}
        ran = status == "ok"
        return VariantReport(name=name, reference=reference, target=target, passes=["a", "b", "c"] if flags else [],
                             flags=flags, changed_flags=flags, status=status, message=message,
                             metrics=dict(metrics) if ran else {}, deltas={"wer": 0.0, "cer": 0.0} if ran else {},
                             latency_ms=Latency(p50=p50, p90=p50 * 1.1, p99=p50 * 1.3) if ran else Latency(),
                             throughput=1000 / p50 if ran else float("nan"), compile_seconds=1.25,
                             model_size_bytes=35_000_000, stages=_stages(6, 3))

    variants = [
        variant("pytorch", "framework", reference=True, p50=80.0),
        variant("onnxruntime_fp32", "onnxruntime"),
        variant("onnxruntime_bucketed", "onnxruntime", {"batching": "bucketed", "batch_size": 16,
                                                        "max_batch_frames": 1242}, p50=20.0),
        variant("onnxruntime_int8_bucketed", "onnxruntime", {"batching": "bucketed", "quantize": "int8_dynamic"},
                p50=15.0),
        variant("openvino_int8_accuracy_aware_bucketed", "openvino", {"precision": "int8", "threads": 2}),
        variant("openvino_bf16", "openvino", {"inference_precision": "bf16"}),
        variant("ascend310_fp16", "ascend310", {"bundle_dir": BUNDLE, "precision_mode": "force_fp16"},
                status="skipped", message="compile: atc not found on PATH; a bundle was written to " + BUNDLE),
    ]
    mark_pareto(variants)
    return RunReport(recipe="/r/deepspeech_an4.yaml", recipe_digest="a" * 64, name="deepspeech_an4", workspace="/w",
                     started="2026-01-01T00:00:00+00:00", wall_seconds=1.0, porter_version="0.1.0",
                     executor="local", plugins=[], libraries={}, tools={}, host={}, variants=variants,
                     reference="pytorch", unit="utterance", unit_abbrev="utt")


def test_the_narrow_table_fits_and_keeps_what_matters():
    report = wide_report()
    for width in (PIPED_WIDTH, 80):
        text = render_table(report, width=width)
        too_long = [line for line in text.splitlines() if len(line) > width]
        assert not too_long, too_long
        header = text.splitlines()[0].split()
        for column in ("variant", "target", "wer", "Δwer", "cer", "Δcer", "p50", "utt/s", "status"):
            assert column in header, (width, column, header)
        # a path is never in a cell: only the skipped variant's own message names the folder
        table, _, messages = text.partition("ascend310_fp16: skipped:")
        assert BUNDLE not in table and "…/ascend_bundle_for_the_device_machine" in table
        assert not ANSI.search(text)
        # the per-subset metrics that did not fit come as their own small table, so none is lost
        for subset in ("wer/unseen_voices", "cer/unseen_engine"):
            assert subset in text
        assert "onnxruntime_int8_bucketed" in text and "openvino_int8_accuracy_aware_bucketed" in text
    narrow = render_table(report, width=PIPED_WIDTH)
    # flags say what sets a variant apart: warmup=2, the same in every variant, is not repeated
    assert "warmup" not in narrow and "batching=bucketed" in narrow and "quantize=int8_dynamic" in narrow
    assert "--wide" in narrow  # names what it left out and where to find it


def test_the_wide_table_has_every_column():
    report = wide_report()
    text = render_table(report, wide=True)
    header = text.splitlines()[0]
    for column in table_columns(report):
        assert column.header in header
    assert "p90 ms" in header and "compile s" in header and "size MB" in header and "cache" in header
    assert "wer/unseen_engine" in header and "passes" in header and "flags" in header
    assert max(len(line) for line in text.splitlines()) > PIPED_WIDTH
    # no memory column: the run stage's added memory undercounts in a process that ran other stages first
    assert "MB" not in header.replace("size MB", "")


def test_colour_only_when_asked_and_terminal_width_only_for_a_terminal():
    report = wide_report()
    assert ANSI.search(render_table(report, width=120, color=True))
    assert terminal_width(io.StringIO()) is None  # a pipe or a file: plain, 100 columns

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(terminal_width(Tty()), int)


@pytest.mark.slow
def test_piped_porter_run_is_plain_and_fits_100_columns(porter_project):
    recipe = porter_project.base_recipe()
    recipe["metrics"] = ["error_rate", "accuracy"]
    recipe["variants"]["ort_bucketed_with_a_long_name"] = {
        "target": {"flags": {"batching": "bucketed", "batch_size": 4, "intra_op_threads": 1}}}
    path = porter_project.write_recipe(recipe)
    code, out, err = porter_project.porter("run", path)
    assert code == 0, err
    assert not ANSI.search(out)
    assert all(len(line) <= PIPED_WIDTH for line in out.splitlines() if "report:" not in line), out
    assert "ort_bucketed_with_a_long_name" in out and "sample/s" in out
    code, wide, err = porter_project.porter("run", path, "--wide")
    assert code == 0, err
    assert "p90 ms" in wide and "compile s" in wide and "intra_op_threads=1" in wide


def test_progress_names_stage_variant_and_n_of_total():
    class Node:
        stage, label = "export", "deepspeech"

    stream = io.StringIO()
    progress = StageProgress(stream)
    progress.begin(12)
    progress(Node(), "onnxruntime_fp32")
    progress(Node(), None)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("porter: [ 1/12] export") and "onnxruntime_fp32" in lines[0]
    assert lines[1].startswith("porter: [ 2/12] export")

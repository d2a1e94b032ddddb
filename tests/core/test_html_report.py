"""report.html: self-contained, well-formed, escaped, with the table, the plots and every section."""
from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest

from porter.artifacts import ParityCheck, PassRecord, SampleScore
from porter.report.html import render_html
from porter.report.model import Latency, PluginInfo, RunReport, StageRecord, VariantReport, Verdict
from porter.report.pareto import mark_pareto
from porter.report.samples import worst_samples

VOID = {"meta", "img", "br", "hr", "input", "link"}


class StructureChecker(HTMLParser):
    """Collects tags, text, images and links, and fails on unbalanced tags."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for name in ("href", "src"):
            if name in attrs and not attrs[name].startswith("data:"):
                self.urls.append(attrs[name])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> StructureChecker:
    checker = StructureChecker()
    checker.feed(page)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, f"unclosed tags: {checker.stack}"
    return checker


def assert_self_contained(page: str, checker: StructureChecker) -> None:
    assert not re.search(r"https?://", page)
    assert not checker.urls
    assert "<script" not in page.lower()
    for src in checker.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_of_a_real_run(porter_project):
    recipe = porter_project.base_recipe()
    recipe["variants"]["ort_bucketed"] = {"target": {"flags": {"batching": "bucketed", "batch_size": 4}}}
    path = porter_project.write_recipe(recipe)
    out_dir = porter_project.root / "out"
    code, _, err = porter_project.porter("run", path, "--out", out_dir)
    assert code == 0, err
    page = (out_dir / "report.html").read_text(encoding="utf-8")
    checker = parse(page)
    assert_self_contained(page, checker)
    text = " ".join(checker.text)
    for name in ("torch", "ort", "ort_bucketed"):
        assert name in text
    for column in ("error_rate", "Δerror_rate", "p50 ms", "p90 ms", "p99 ms", "sample/s", "compile s",
                   "size MB"):
        assert column in text, column
    # the run stage's added memory undercounts in a process that ran other stages first: not shown; and a
    # dataset that names no unit gets no speech words
    assert "run MB" not in text and "utt/s" not in text and "utterance" not in text
    # latency vs accuracy, time per stage, latency distribution (from the stored per-utterance latencies)
    assert len(checker.images) == 3
    assert "Not drawn" not in text
    # build_report marks the front; at least the fastest of the equally accurate variants is on it
    assert re.search(r"\b(torch|ort|ort_bucketed) \*", text)
    assert "Export parity" in text and "export vs torch" in text
    assert "Provenance" in text and "onnxruntime" in text
    assert "Worst samples" in text


def _stage(stage, seconds, hit=False):
    return StageRecord(key=f"k-{stage}", stage=stage, plugin="p", label=stage, cache_hit=hit, seconds=seconds)


def handmade_report() -> RunReport:
    check = ParityCheck("export vs torch <fp32>", 2e-6, 1e-4, 3)
    passed = ParityCheck("pass split", 0.0, 1e-5, 2)
    broken = ParityCheck("pass drift", 0.5, 1e-5, 2)
    hostile = "<script>alert('x')</script> & more"
    samples = [SampleScore("u1", "HELLO WORLD", hostile, {"wer": 150.0, "cer": 90.0}),
               SampleScore("u2", "YES", "YES", {"wer": 0.0, "cer": 0.0}),
               SampleScore("u3", "G O", "G O O", {"wer": 50.0, "cer": 33.3})]
    ref = VariantReport(name="framework_ref", reference=True, target="framework", passes=[], flags={},
                        metrics={"wer": 10.0, "cer": 4.0, "wer/unseen": 12.0},
                        latency_ms=Latency(p50=40.0, p90=44.0, p99=50.0, samples=(38.0, 40.0, 41.0, 50.0)),
                        throughput=25.0,
                        stages=[_stage("preprocess", 1.0), _stage("run_reference", 2.0), _stage("score", 0.1)],
                        samples=samples[1:])
    fast = VariantReport(name="ort_int8<b>", reference=False, target="onnxruntime", passes=["split"],
                         flags={"quantize": "int8_dynamic"}, changed_flags={"quantize": "int8_dynamic"},
                         metrics={"wer": 11.0, "cer": 4.5, "wer/unseen": 13.0}, deltas={"wer": 1.0, "cer": 0.5},
                         latency_ms=Latency(p50=8.0, p90=9.0, p99=15.0, samples=(7.0, 8.0, 8.5, 15.0)),
                         throughput=120.0, run_memory_mb=30.0,
                         compile_seconds=1.5, model_size_bytes=2_500_000,
                         stages=[_stage("preprocess", 1.0, hit=True), _stage("export", 3.0),
                                 _stage("graph_fix", 0.5), _stage("compile", 1.5), _stage("run", 0.4),
                                 _stage("score", 0.1)],
                         checks=[check],
                         pass_records=[PassRecord("split", {"LSTM": 1, "Add": 2}, {"LSTM": 2, "Add": 2,
                                                                                   "ReverseSequence": 2}, passed)],
                         samples=samples, artifacts={"export:mlp": "ab" * 32},
                         details={"run": {"batching": "bucketed", "batch_size": 4}})
    slow = VariantReport(name="ort_slow", reference=False, target="onnxruntime", passes=["drift"], flags={},
                         metrics={"wer": 12.0, "cer": 5.0}, deltas={"wer": 2.0, "cer": 1.0},
                         latency_ms=Latency(p50=60.0, p90=70.0, p99=90.0, samples=(55.0, 60.0, 90.0)), checks=[check],
                         pass_records=[PassRecord("drift", {"Add": 2}, {"Add": 2}, broken)],
                         stages=[_stage("run", 3.0)])
    failed = VariantReport(name="ascend", reference=False, target="ascend310", passes=[], flags={},
                           status="skipped", message="compile: atc not found <PATH>")
    variants = [ref, fast, slow, failed]
    mark_pareto(variants)
    return RunReport(recipe="/r/recipe.yaml", recipe_digest="f" * 64, name="demo <run>", workspace="/w",
                     started="2025-01-01T00:00:00+00:00", wall_seconds=12.5, porter_version="0.1.0",
                     executor="local", plugins=[PluginInfo(name="deepspeech", version="1.0", module="m",
                                                            source="builtin")],
                     libraries={"torch": "2.13.0", "onnxruntime": "1.32"}, tools={"atc": "7.0 <fake>"},
                     host={"cpu": "Test CPU", "cores": 2}, variants=variants, reference="framework_ref",
                     verdicts=[Verdict(budget="delta_wer<=0.5", variant="ort_int8<b>", value=1.0, ok=False,
                                       text="x")],
                     stage_counts={"computed": 9, "cached": 1}, unit="utterance", unit_abbrev="utt")


@pytest.mark.slow
def test_handmade_report_escapes_and_has_every_section():
    report = handmade_report()
    page = render_html(report)
    checker = parse(page)
    assert_self_contained(page, checker)
    # the hostile hypothesis, variant name and tool version arrive as text, never as markup
    assert "<script>alert" not in page and "ort_int8<b>" not in page and "<b>" not in page
    assert "ort_int8&lt;b&gt;" in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    text = " ".join(checker.text)
    assert "<script>alert('x')</script>" in text  # shown to the reader as it was
    assert "ort_int8<b>" in text and "demo <run>" in text and "atc not found <PATH>" in text
    assert len(checker.images) == 3
    # the table: pareto mark, reference, delta columns, estimate column contents
    assert "ort_int8<b> *" in text and "framework_ref * (ref)" in text and "ort_slow *" not in text
    assert "Δwer" in text and "+1.00" in text
    assert "Metrics per subset" in text and "wer/unseen" in text and "utt/s" in text.split("Metrics per subset")[0]
    # passes: op changes and a failed parity shown as such
    assert "LSTM 1→2" in text and "ReverseSequence 0→2" in text and "FAILED" in text
    assert "export vs torch <fp32>" in text
    assert "BROKEN" in text and "delta_wer<=0.5" in text
    assert "f" * 64 in text and "ab" * 32 in text and "Test CPU" in text and "7.0 <fake>" in text
    # worst utterances: u1 first, the correct one not listed
    section = text.split("Worst utterances", 1)[1].split("Provenance")[0]
    int8 = section.split("ort_int8<b>: 2 shown of 3 utterances", 1)[1]
    assert int8.index("u1") < int8.index("u3")
    assert "u2" not in section


def test_worst_samples_orders_by_the_accuracy_metric():
    v = handmade_report().variants[1]
    assert [s.id for s in worst_samples(v, "wer", 10)] == ["u1", "u3"]
    assert [s.id for s in worst_samples(v, "wer", 1)] == ["u1"]


def test_a_report_without_numbers_still_renders():
    v = VariantReport(name="only", reference=False, target="onnxruntime", passes=[], flags={}, status="failed",
                      message="export: boom")
    report = RunReport(recipe="r", recipe_digest="0" * 64, name="n", workspace="w", started="s",
                       wall_seconds=0.0, porter_version="0", executor="local", plugins=[], libraries={}, tools={},
                       host={}, variants=[v])
    page = render_html(report)
    checker = parse(page)
    assert not checker.images
    assert "Not drawn" in page and "export: boom" in page

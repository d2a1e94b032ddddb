"""Finding atc / aoe / msame / ais_bench and the CANN version; clear errors when they are missing or fail."""
from __future__ import annotations

import sys

import pytest
from fakes import toolbox as tb

from porter.errors import ToolMissingError
from porter_ascend310 import plugin, toolkit


def _toolkit_home(root, version_file, text):
    """A CANN-like install: the fake atc and aoe under compiler/bin and tools/aoe/bin, plus a version file."""
    for sub, tool in (("compiler/bin", "atc"), ("tools/aoe/bin", "aoe")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        tb._wrapper(root / sub / tool, [sys.executable, str(tb.FAKES / f"fake_{tool}.py")])
    path = root / version_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return root


def test_tools_found_on_path(tmp_path, monkeypatch):
    fake = tb.install(tmp_path, monkeypatch)
    found = toolkit.find_toolkit()
    assert found.atc == fake.bin / "atc" and found.aoe == fake.bin / "aoe" and found.msame == fake.bin / "msame"
    assert found.ais_bench is not None and found.ais_bench[1:] == ("-m", "ais_bench")
    versions = found.versions()
    assert str(fake.bin / "atc") in versions["atc"] and "not found" not in versions["msame"]


def test_tools_found_under_ascend_toolkit_home(tmp_path, monkeypatch):
    tb.no_tools(tmp_path / "empty", monkeypatch)
    home = _toolkit_home(tmp_path / "Ascend" / "latest", "x86_64-linux/ascend_toolkit_install.info",
                         "package_name=Ascend-cann-toolkit\nversion=5.1.RC2\ninnerversion=V100R001C82\n")
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(home))
    found = toolkit.find_toolkit()
    assert found.atc == home / "compiler/bin/atc"
    assert found.aoe == home / "tools/aoe/bin/aoe"
    assert found.cann_version == "5.1.RC2"
    assert found.msame is None and found.ais_bench is None
    assert "CANN 5.1.RC2" in found.versions()["atc"]


def test_older_version_file_layout(tmp_path, monkeypatch):
    tb.no_tools(tmp_path / "empty", monkeypatch)
    home = _toolkit_home(tmp_path / "toolkit", "atc/version.info", "Version=5.0.4\n")
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(home))
    assert toolkit.find_toolkit().cann_version == "5.0.4"


def test_version_of_a_toolkit_whose_atc_is_on_path(tmp_path, monkeypatch):
    tb.no_tools(tmp_path / "empty", monkeypatch)
    home = _toolkit_home(tmp_path / "cann", "compiler/version.info", "Version=6.0.1\n")
    monkeypatch.setenv("PATH", f"{home / 'compiler/bin'}:{tb.SYSTEM_PATH}")
    found = toolkit.find_toolkit()
    assert found.atc == home / "compiler/bin/atc" and found.cann_version == "6.0.1"


@pytest.mark.parametrize("text, expected", [("5.1.RC2", (5, 1)), ("5.0.4.alpha005", (5, 0)), ("6.0.1", (6, 0)),
                                            ("8.0.RC2.beta1", (8, 0))])
def test_parse_cann_version(text, expected):
    assert toolkit.parse_cann_version(text) == expected


def test_missing_tool_message_names_tool_places_and_bundle(tmp_path, monkeypatch):
    tb.no_tools(tmp_path, monkeypatch)
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(tmp_path / "my-toolkit"))
    found = toolkit.find_toolkit()
    assert found.atc is None and found.ais_bench is None
    with pytest.raises(ToolMissingError) as error:
        found.command("atc")
    message = str(error.value)
    assert message.startswith("atc not found")
    assert str(tmp_path / "my-toolkit" / "compiler" / "bin") in message and "PATH" in message
    assert "--bundle DIR" in message and "porter score" in message
    assert "ais_bench" in found.missing_message("ais_bench") and "python3" in found.missing_message("ais_bench")
    assert found.versions() == {"atc": "not found", "aoe": "not found", "msame": "not found",
                                "ais_bench": "not found"}


def test_compile_without_atc_and_without_bundle_is_tool_missing(tmp_path, monkeypatch):
    tb.no_tools(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    with pytest.raises(ToolMissingError, match="atc not found"):
        plugin.porter_compile(target=tb.target(), model=model, workdir=tmp_path, context=None)


def test_failing_tool_shows_the_tail_of_its_stderr(tmp_path, monkeypatch):
    tb.install(tmp_path / "tools", monkeypatch)
    monkeypatch.setenv(tb.FAIL_VARIABLE, "atc")
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(toolkit.ToolFailedError) as error:
        plugin.porter_compile(target=tb.target(), model=model, workdir=work, context=None)
    message = str(error.value)
    assert "atc exited with status 3" in message
    assert "E19999: atc fake failure" in message
    assert "noise line 29" in message and "noise line 0\n" not in message  # only the tail


def test_autotune_on_a_detected_new_toolkit_runs_aoe_then_atc(tmp_path, monkeypatch):
    fake = tb.install(tmp_path / "tools", monkeypatch, tools=("msame",))
    home = _toolkit_home(tmp_path / "cann", "compiler/version.info", "Version=6.0.1\n")
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(home))
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    work = tmp_path / "work"
    work.mkdir()
    compiled = plugin.porter_compile(target=tb.target(autotune="RL,GA", subgraph_tuning=True), model=model,
                                     workdir=work, context=None)
    assert [a[2] for a in fake.calls("aoe")] == ["--job_type=1", "--job_type=2"]
    [atc_call] = fake.calls("atc")
    assert not any("auto_tune_mode" in a for a in atc_call)
    assert compiled.details["cann_version"] == "6.0.1" and len(compiled.details["aoe_argvs"]) == 2


def test_autotune_on_a_detected_old_toolkit_uses_atc(tmp_path, monkeypatch):
    fake = tb.install(tmp_path / "tools", monkeypatch, tools=())
    home = _toolkit_home(tmp_path / "cann", "fwkacllib/version.info", "Version=5.0.2.alpha005\n")
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(home))
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    work = tmp_path / "work"
    work.mkdir()
    plugin.porter_compile(target=tb.target(autotune="RL"), model=model, workdir=work, context=None)
    assert fake.calls("aoe") == []
    assert fake.calls("atc")[0][-1] == "--auto_tune_mode=RL"


def test_tool_versions_hook(tmp_path, monkeypatch):
    tb.install(tmp_path, monkeypatch, tools=("atc",))
    versions = plugin.porter_tool_versions()
    assert set(versions) == {"atc", "aoe", "msame", "ais_bench"}
    assert versions["msame"] == "not found" and versions["atc"] != "not found"


def test_stage_resources():
    assert plugin.porter_stage_resources(stage="compile", target=tb.target()) == {"atc": 1}
    assert plugin.porter_stage_resources(stage="run", target=tb.target()) == {"ascend310": 1}
    assert plugin.porter_stage_resources(stage="score", target=tb.target()) is None
    other = tb.target()
    other = type(other)(name="onnxruntime", flags={})
    assert plugin.porter_stage_resources(stage="compile", target=other) is None


def test_graph_passes_are_dispatched_by_name(tmp_path, monkeypatch):
    """The plugin registers whatever porter_ascend310.passes.PASSES holds and calls the named rewrite."""
    import onnx

    import porter_ascend310.passes as passes
    from porter.specs import PassConfig, PassSpec

    def rename_graph(model, name="renamed"):
        model.graph.name = name
        return model

    spec = PassSpec("rename_graph_for_test", description="test-only pass")
    monkeypatch.setattr(passes, "PASSES", {spec.name: (spec, rename_graph)}, raising=False)
    assert plugin.porter_register_passes() == [spec]
    model = onnx.load(str(tb.tiny_onnx(tmp_path / "tiny.onnx").path))
    fixed = plugin.porter_graph_fix(graph_pass=PassConfig(spec.name, {"name": "g2", "unset": None}, 1e-4),
                                    model=model)
    assert fixed.graph.name == "g2"
    assert plugin.porter_graph_fix(graph_pass=PassConfig("someone_elses_pass", {}, 1e-4), model=model) is None


def test_bundling_variants_need_no_device_resources():
    assert plugin.porter_stage_resources(stage="compile", target=tb.target(bundle_dir="/tmp/b")) is None
    assert plugin.porter_stage_resources(stage="run", target=tb.target(bundle_dir="/tmp/b")) is None

"""atc's option table and the argument lists porter builds for atc and aoe."""
from __future__ import annotations

import pytest
from fakes import toolbox as tb

from porter.artifacts import TensorSpec
from porter.errors import InputError
from porter_ascend310 import atc, plugin, runners

STATIC = (TensorSpec("spect", (1, 1, 161, 621), "float32"), TensorSpec("transcript", (1,), "int32"))
DYNAMIC_BATCH = (TensorSpec("spect", ("batch", 1, 161, 621), "float32"), TensorSpec("lengths", ("batch",), "int32"))
DYNAMIC_TIME = (TensorSpec("spect", (1, 1, 161, "time"), "float32"), TensorSpec("lengths", (1,), "int32"))
BASE = ["atc", "--framework=5", "--model=deepspeech.onnx", "--output=deepspeech_bs1", "--soc_version=Ascend310"]


def argv(inputs=STATIC, **flags):
    return atc.build_atc_argv("deepspeech.onnx", "deepspeech_bs1", inputs, flags)


def test_default_argv_is_the_modelzoo_command():
    assert argv(log="debug") == BASE + ["--input_format=NCHW", "--input_shape=spect:1,1,161,621;transcript:1",
                                        "--log=debug"]


def test_symbolic_batch_becomes_one():
    assert "--input_shape=spect:1,1,161,621;lengths:1" in argv(DYNAMIC_BATCH)


@pytest.mark.parametrize("mode", atc.ATC_OPTIONS["precision_mode"].choices)
def test_each_precision_mode_is_one_argument(mode):
    result = argv(precision_mode=mode)
    assert result[-1] == f"--precision_mode={mode}"
    assert result[:5] == BASE


def test_misspelt_precision_mode_is_refused_with_suggestion():
    with pytest.raises(InputError) as error:
        argv(precision_mode="force_fp61")
    message = str(error.value)
    assert "target.flags.precision_mode" in message and "'force_fp61'" in message
    assert "did you mean 'force_fp16'" in message


def test_implmode_with_op_type_list():
    result = argv(op_select_implmode="high_precision", optypelist_for_implmode=["LSTM", "DynamicRNN"])
    assert result[-2:] == ["--op_select_implmode=high_precision", "--optypelist_for_implmode=LSTM,DynamicRNN"]
    assert argv(op_select_implmode="high_performance", optypelist_for_implmode="Pooling")[-1] == \
        "--optypelist_for_implmode=Pooling"


def test_op_type_list_needs_a_matching_implmode():
    with pytest.raises(InputError, match="optypelist_for_implmode.*needs op_select_implmode"):
        argv(optypelist_for_implmode=["LSTM"])
    with pytest.raises(InputError, match="needs op_select_implmode"):
        argv(op_select_implmode="high_precision_for_all", optypelist_for_implmode=["LSTM"])


def test_list_options_and_output_type():
    result = argv(input_fp16_nodes=["spect"], out_nodes=["Softmax_1:0", "Cast_2:0"], output_type="FP16",
                  buffer_optimize="off_optimize", enable_small_channel=1)
    assert "--input_fp16_nodes=spect" in result
    assert "--out_nodes=Softmax_1:0;Cast_2:0" in result
    assert "--output_type=FP16" in result and "--buffer_optimize=off_optimize" in result
    assert "--enable_small_channel=1" in result
    # the per-output form needs out_nodes naming those outputs (atc's --output_type page)
    assert "--output_type=out:0:FP16;lengths:1:FP32" in argv(output_type="out:0:FP16;lengths:1:FP32",
                                                              out_nodes=["out:0", "lengths:1"])
    with pytest.raises(InputError, match="output_type"):
        argv(output_type="FP64")
    with pytest.raises(InputError, match="enable_small_channel"):
        argv(enable_small_channel=2)


def test_file_options_must_exist(tmp_path):
    switch = tmp_path / "fusion.cfg"
    switch.write_text('{"Switch":{"GraphFusion":{"ALL":"off"}}}')
    assert f"--fusion_switch_file={switch}" in argv(fusion_switch_file=str(switch))
    with pytest.raises(InputError, match=r"keep_dtype.*does not exist"):
        argv(keep_dtype=str(tmp_path / "missing.cfg"))


def test_autotune_before_cann_5_1_is_an_atc_option():
    result = argv(autotune="RL,GA", cann_version="5.0.4")
    assert result[-1] == "--auto_tune_mode=RL,GA"
    assert atc.build_aoe_argvs("m.onnx", STATIC, {"autotune": "RL,GA", "cann_version": "5.0.4"}) == []
    assert argv(autotune="RL", cann_version="5.0.2.alpha005")[-1] == "--auto_tune_mode=RL"


def test_autotune_from_cann_5_1_runs_aoe_subgraphs_then_operators():
    # audit point 2: RL (Vector) and GA (Cube) were both operator tuning: aoe --job_type=2; subgraph tuning
    # (job_type 1) is its own flag and runs first
    flags = {"autotune": "RL,GA", "subgraph_tuning": True, "cann_version": "5.1.RC2", "log": "info"}
    assert not any(a.startswith("--auto_tune_mode") for a in argv(**flags))
    aoe = atc.build_aoe_argvs("m.onnx", STATIC, flags)
    assert aoe == [
        ["aoe", "--framework=5", "--model=m.onnx", "--job_type=1", "--input_format=NCHW",
         "--input_shape=spect:1,1,161,621;transcript:1", "--log=info"],
        ["aoe", "--framework=5", "--model=m.onnx", "--job_type=2", "--input_format=NCHW",
         "--input_shape=spect:1,1,161,621;transcript:1", "--log=info"],
    ]
    for modes in ("RL", "GA", "RL,GA"):
        assert [a[3] for a in atc.build_aoe_argvs("m.onnx", STATIC, {"autotune": modes, "cann_version": "7.0.0"})] \
            == ["--job_type=2"]
    assert [a[3] for a in atc.build_aoe_argvs("m.onnx", STATIC, {"subgraph_tuning": True,
                                                                 "cann_version": "6.0.1"})] == ["--job_type=1"]
    with pytest.raises(InputError, match="subgraph_tuning"):
        atc.build_aoe_argvs("m.onnx", STATIC, {"subgraph_tuning": True, "cann_version": "5.0.4"})


def test_detected_toolkit_version_decides_when_the_flag_is_absent():
    old = atc.build_atc_argv("m.onnx", "m", STATIC, {"autotune": "GA"}, detected_cann="5.0.4")
    new = atc.build_atc_argv("m.onnx", "m", STATIC, {"autotune": "GA"}, detected_cann="6.0.1")
    assert old[-1] == "--auto_tune_mode=GA"
    assert not any("auto_tune_mode" in a for a in new)
    # the flag wins over the detected toolkit
    assert atc.build_atc_argv("m.onnx", "m", STATIC, {"autotune": "GA", "cann_version": "5.0.4"},
                              detected_cann="6.0.1")[-1] == "--auto_tune_mode=GA"


def test_autotune_without_any_cann_version_asks_for_one():
    with pytest.raises(InputError, match="cann_version"):
        argv(autotune="RL")
    with pytest.raises(InputError, match="autotune"):
        argv(autotune="XX", cann_version="5.0.4")


def test_extra_args_pass_through_untouched_at_the_end():
    extra = ["--op_debug_level=1", "--status_check=0", "--weird value with spaces"]
    assert argv(precision_mode="force_fp16", extra_args=extra)[-3:] == extra
    with pytest.raises(InputError, match="extra_args"):
        argv(extra_args="--op_debug_level=1")
    with pytest.raises(InputError, match="extra_args"):
        argv(extra_args=["--ok", 3])


def test_dynamic_batch_profiles():
    result = argv(DYNAMIC_BATCH, dynamic_batch_size=[1, 4, 8])
    assert "--input_shape=spect:-1,1,161,621;lengths:-1" in result
    assert result[-1] == "--dynamic_batch_size=1,4,8"
    assert argv(DYNAMIC_BATCH, dynamic_batch_size="1,2")[-1] == "--dynamic_batch_size=1,2"
    with pytest.raises(InputError, match="dynamic_batch_size.*batch dim"):
        argv(STATIC, dynamic_batch_size=[1, 4])
    with pytest.raises(InputError, match="dynamic_batch_size"):
        argv(DYNAMIC_BATCH, dynamic_batch_size=[0, 4])


def test_dynamic_dims_use_nd_and_one_value_per_wildcard():
    result = argv(DYNAMIC_TIME, dynamic_dims=[[400], [621]])
    assert "--input_format=ND" in result
    assert "--input_shape=spect:1,1,161,-1;lengths:1" in result
    assert result[-1] == "--dynamic_dims=400;621"
    with pytest.raises(InputError, match="1 dynamic"):
        argv(DYNAMIC_TIME, dynamic_dims="400,1;621,1")
    with pytest.raises(InputError, match="input_format.*ND"):
        argv(DYNAMIC_TIME, dynamic_dims=[[400]], input_format="NCHW")


def test_dynamic_image_size_on_nchw():
    inputs = (TensorSpec("img", (1, 3, "h", "w"), "float32"),)
    result = argv(inputs, dynamic_image_size=[[224, 224], [448, 448]])
    assert "--input_shape=img:1,3,-1,-1" in result and result[-1] == "--dynamic_image_size=224,224;448,448"


def test_only_one_dynamic_option():
    with pytest.raises(InputError, match="cannot be combined"):
        argv(DYNAMIC_BATCH, dynamic_batch_size=[1, 2], dynamic_dims=[[1]])


def test_a_dynamic_time_axis_needs_a_shape():
    with pytest.raises(InputError) as error:
        argv(DYNAMIC_TIME)
    message = str(error.value)
    assert "'spect' dim 3" in message and "input_shape" in message and "dynamic_" in message


def test_input_shape_override_as_text_or_mapping():
    assert "--input_shape=spect:1,1,161,400;lengths:1" in argv(DYNAMIC_TIME, input_shape="spect:1,1,161,400;lengths:1")
    assert "--input_shape=spect:1,1,161,300;lengths:1" in argv(
        DYNAMIC_TIME, input_shape={"spect": [1, 1, 161, 300], "lengths": [1]})
    with pytest.raises(InputError, match="did you mean 'spect'"):
        argv(DYNAMIC_TIME, input_shape="spectt:1,1,161,400;lengths:1")
    with pytest.raises(InputError, match="has 3 dims; the model.s input has 4"):
        argv(DYNAMIC_TIME, input_shape="spect:1,161,400;lengths:1")


def test_precision_mode_v2_excludes_precision_mode():
    assert argv(precision_mode_v2="mixed_float16")[-1] == "--precision_mode_v2=mixed_float16"
    with pytest.raises(InputError, match="precision_mode"):
        argv(precision_mode="force_fp16", precision_mode_v2="fp16")


def test_unknown_flag_lists_the_known_ones_with_a_suggestion():
    with pytest.raises(InputError) as error:
        argv(precison_mode="force_fp16")
    message = str(error.value)
    assert "unknown ascend310 flag 'precison_mode'" in message
    assert "did you mean 'precision_mode'" in message
    for known in ("buffer_optimize", "dynamic_dims", "extra_args", "runner", "bundle_dir"):
        assert known in message


def test_unset_flags_are_ignored():
    assert argv(precision_mode=None, extra_args=(), autotune=None) == argv()


def test_shell_metacharacters_stay_one_argument_and_run_nothing(tmp_path, monkeypatch):
    """The value reaches the (fake) atc as one argv element; no shell ever sees it."""
    fake = tb.install(tmp_path / "tools", monkeypatch)
    monkeypatch.chdir(tmp_path)
    hostile = "a;rm -rf x $(touch y) `touch z` && touch w"
    odd_file = tmp_path / "keep $(touch v);x.cfg"
    odd_file.write_text("Conv1\n")
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "x").mkdir()
    compiled = plugin.porter_compile(target=tb.target(soc_version=hostile, keep_dtype=str(odd_file)), model=model,
                                     workdir=work, context=None)
    assert compiled.path.is_file()
    [call] = fake.calls("atc")
    assert f"--soc_version={hostile}" in call
    assert f"--keep_dtype={odd_file}" in call
    assert (tmp_path / "x").is_dir()
    for marker in "yzwv":
        assert not list(tmp_path.rglob(marker)), f"a shell ran: {marker} was created"


def test_target_declares_every_option_with_help():
    [spec] = plugin.porter_register_targets()
    expected = set(atc.ATC_OPTIONS) | set(atc.COMPILE_FLAGS) | set(runners.RUN_FLAGS) | {"bundle_dir"}
    assert set(spec.flags) == expected == set(atc.known_flag_names())
    assert all(option.help for option in spec.flags.values())
    assert spec.flags["bundle_dir"].kind == "path" and spec.flags["bundle_dir"].must_exist is False
    assert spec.run_flags == frozenset(runners.RUN_FLAGS)
    assert spec.flags["precision_mode"].choices == atc.ATC_OPTIONS["precision_mode"].choices

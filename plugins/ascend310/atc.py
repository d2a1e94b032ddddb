"""atc's options as a validated table, and the argument lists of atc (ONNX → .om) and aoe (autotune).

Every value becomes exactly one argv element of the form ``--name=value``: nothing is shell-quoted here, because
nothing here goes through a shell (bundle.py quotes when it writes run.sh for a human to carry).
Facts: ../../shared/reference/ascend310.md and porting-notes §3.4 (CANN 5.x–8.x documentation).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from porter.api import TensorSpec
from porter.api import InputError
from porter.api import Option
from porter.api import suggest as did_you_mean

from porter_ascend310.toolkit import parse_cann_version

FLAG_FIELD = "target.flags"
# CANN release from which autotune is the separate aoe tool and atc no longer has --auto_tune_mode.
AOE_FROM_CANN = (5, 1)
# aoe job types: 1 = subgraph tuning (SGAT), 2 = operator tuning (OPAT); subgraphs are tuned first.
AOE_JOB_TYPES = {"RL": 1, "GA": 2}
AUTOTUNE_CHOICES = ("RL", "GA", "RL,GA")
FRAMEWORK_ONNX = "5"


@dataclass(frozen=True)
class AtcOption:
    """One atc command-line option a variant may set.

    ``kind`` says how a recipe value becomes the argv text: ``choice`` (one of ``choices``), ``text`` (any
    one-line string), ``path`` (an existing file), ``names`` (a list joined with ``separator``), ``ints`` (a
    list of integers joined with ","), ``profiles`` (a list of integer lists: "," inside, ";" between),
    ``output_type`` (FP32/FP16/UINT8 or the per-output "node:index:TYPE" form).
    """

    name: str
    kind: str
    help: str
    choices: tuple = ()
    separator: str = ","
    default: Any = None

    def to_option(self) -> Option:
        """The recipe-level declaration the core validates before atc.py checks the value in detail."""
        if self.kind == "choice":
            return Option("str", default=self.default, choices=self.choices, help=self.help)
        if self.kind == "path":
            return Option("path", help=self.help, must_exist=True)
        if self.kind == "int_choice":
            return Option("int", default=self.default, choices=self.choices, help=self.help)
        if self.kind in ("text", "output_type"):
            return Option("str", default=self.default, help=self.help)
        # names, ints and profiles accept a YAML list or the atc string form
        return Option("any", default=self.default, help=self.help)


ATC_OPTIONS: dict[str, AtcOption] = {o.name: o for o in (
    AtcOption("soc_version", "text", "chip: Ascend310, Ascend310P3, Ascend910, ... (others pass through; the chip "
              "name comes from `npu-smi info`)", default="Ascend310"),
    AtcOption("input_format", "choice", "layout of the inputs; default NCHW, or ND with dynamic_dims",
              choices=("NCHW", "NHWC", "ND")),
    AtcOption("input_shape", "text", "override the shapes derived from the ONNX inputs: 'name:d0,d1;name2:d0' "
              "or a mapping name → list of dims (-1 with a dynamic_* option; porter's runners need known "
              "shapes, so atc's range form '[1~16,...]' belongs in extra_args)"),
    AtcOption("log", "choice", "atc log level", choices=("debug", "info", "warning", "error", "null"),
              default="error"),
    AtcOption("precision_mode", "choice", "force_fp16 is the inference default on Ascend 310 (accuracy: "
              "must_keep_origin_dtype > allow_fp32_to_fp16 > allow_mix_precision > force_fp16)",
              choices=("force_fp16", "allow_fp32_to_fp16", "must_keep_origin_dtype", "allow_mix_precision",
                       "allow_mix_precision_fp16", "allow_mix_precision_bf16", "allow_fp32_to_bf16",
                       "force_fp32", "cube_fp16in_fp32out")),
    AtcOption("precision_mode_v2", "text", "newer precision switch (fp16, origin, mixed_float16, ...); "
              "excludes precision_mode"),
    AtcOption("op_select_implmode", "choice", "operator implementation mode (deprecated for op_precision_mode)",
              choices=("high_performance", "high_precision", "high_precision_for_all",
                       "high_performance_for_all")),
    AtcOption("optypelist_for_implmode", "names", "op types the implmode applies to, e.g. [LSTM, Pooling]; "
              "needs op_select_implmode high_precision or high_performance"),
    AtcOption("op_precision_mode", "path", ".ini of OpType=mode lines; overrides the two implmode options"),
    AtcOption("fusion_switch_file", "path", "config turning graph/UB fusion passes on or off"),
    AtcOption("buffer_optimize", "choice", "data buffer optimisation",
              choices=("l2_optimize", "l1_optimize", "off_optimize")),
    AtcOption("mdl_bank_path", "path", "subgraph-tuning repository (aoe job_type 1 results)"),
    AtcOption("enable_small_channel", "int_choice", "1 optimises first convolutions with few input channels "
              "(not verified in the documentation)", choices=(0, 1)),
    AtcOption("input_fp16_nodes", "names", "inputs that take fp16 data, e.g. [spect]", separator=";"),
    AtcOption("output_type", "output_type", "model output dtype: FP32, FP16, UINT8, or per output "
              "'node:index:FP16;...'"),
    AtcOption("out_nodes", "names", "choose model outputs, e.g. ['node:0', 'node:1']", separator=";"),
    AtcOption("keep_dtype", "path", "file of op names (or OpType::TypeName) that keep their original dtype"),
    AtcOption("modify_mixlist", "path", "JSON editing the black/white/gray lists of allow_mix_precision"),
    AtcOption("insert_op_conf", "path", "AIPP config (image inputs only)"),
    AtcOption("dynamic_batch_size", "ints", "batch profiles, e.g. [1, 4, 8]; the batch dim becomes -1"),
    AtcOption("dynamic_image_size", "profiles", "H,W profiles, e.g. [[224, 224], [448, 448]]; H and W "
              "of NCHW inputs become -1"),
    AtcOption("dynamic_dims", "profiles", "one value per dynamic dim across all inputs, in order, per "
              "profile, e.g. [[400], [621]]; needs input_format ND"),
    AtcOption("input_shape_range", "text", "older runtime range syntax 'in:[8~20,3,5,-1]' (the runners "
              "still feed the static shape of --input_shape)"),
)}

# Options porter adds around atc's own; they are not atc flags themselves.
COMPILE_FLAGS: dict[str, Option] = {
    "autotune": Option("str", choices=AUTOTUNE_CHOICES, help="RL (subgraph) / GA (operator) tuning: atc "
                       "--auto_tune_mode for CANN < 5.1, the aoe tool (job_type 1/2) from CANN 5.1"),
    "cann_version": Option("str", help="CANN version the commands are for, e.g. 5.0.4 or 6.0.1 (default: the "
                           "installed toolkit's)"),
    "extra_args": Option("list", default=(), help="further atc arguments, passed through untouched"),
    "om_name": Option("str", help="file name of the .om, without extension (default: the ONNX file's stem)"),
}
# Flags of the ascend310 target that runners.py and plugin.py own: accepted here, not used for atc.
NON_ATC_FLAGS = frozenset({"runner", "outfmt", "device", "warmup_count", "loop", "bundle_dir"})
DYNAMIC_OPTIONS = ("dynamic_batch_size", "dynamic_image_size", "dynamic_dims", "input_shape_range")
OUTPUT_TYPES = ("FP32", "FP16", "UINT8")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _bad(name: str, message: str) -> InputError:
    return InputError(message, field=f"{FLAG_FIELD}.{name}")


def suggest(name: str, known: Sequence[str]) -> str:
    return did_you_mean(name, known, " (did you mean {!r}?)")


def check_known(flags: Mapping[str, Any], known: Sequence[str]) -> None:
    """Unknown flag names → InputError listing the known ones, with the closest match."""
    for name in flags:
        if name not in known:
            raise _bad(name, f"unknown ascend310 flag {name!r}{suggest(name, known)}; known flags: "
                             f"{', '.join(sorted(known))}. Put other atc arguments in extra_args "
                             f"(a list of strings passed through untouched)")


def known_flag_names() -> tuple[str, ...]:
    return tuple(ATC_OPTIONS) + tuple(COMPILE_FLAGS) + tuple(sorted(NON_ATC_FLAGS))


# ---------------------------------------------------------------------------------------------------------
# Values: recipe value → the text after "--name="
# ---------------------------------------------------------------------------------------------------------


def _one_line(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(name, f"is {value!r}; expected a non-empty string")
    if "\n" in value or "\r" in value or "\0" in value:
        raise _bad(name, f"is {value!r}; expected a single line")
    return value


def _names(option: AtcOption, value: Any) -> str:
    items = value.split(option.separator) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise _bad(option.name, f"is {value!r}; expected a non-empty list of names")
    return option.separator.join(_one_line(option.name, str(item) if isinstance(item, int) else item).strip()
                                 for item in items)


def _int_list(name: str, value: Any, separator: str = ",") -> list[int]:
    items = value.split(separator) if isinstance(value, str) else value
    if isinstance(items, int) and not isinstance(items, bool):
        items = [items]
    if not isinstance(items, (list, tuple)) or not items:
        raise _bad(name, f"is {value!r}; expected a list of positive integers")
    numbers = []
    for item in items:
        try:
            number = int(str(item).strip()) if not isinstance(item, bool) else None
        except ValueError:
            number = None
        if number is None or number < 1:
            raise _bad(name, f"has {item!r} in {value!r}; expected positive integers")
        numbers.append(number)
    return numbers


def parse_profiles(name: str, value: Any) -> list[list[int]]:
    """``[[1, 2], [3, 4]]`` or ``"1,2;3,4"`` → [[1, 2], [3, 4]]."""
    rows = value.split(";") if isinstance(value, str) else value
    if not isinstance(rows, (list, tuple)) or not rows:
        raise _bad(name, f"is {value!r}; expected a list of profiles such as [[400], [621]] or '400;621'")
    profiles = [_int_list(name, row if not isinstance(row, int) else [row]) for row in rows]
    if len({len(p) for p in profiles}) != 1:
        raise _bad(name, f"is {value!r}; every profile must have the same number of values")
    return profiles


def _output_type(name: str, value: Any) -> str:
    text = _one_line(name, value)
    if text in OUTPUT_TYPES:
        return text
    for part in text.split(";"):
        pieces = part.split(":")
        if len(pieces) != 3 or not pieces[0] or not pieces[1].isdigit() or pieces[2] not in OUTPUT_TYPES:
            raise _bad(name, f"is {value!r}; expected one of {', '.join(OUTPUT_TYPES)} or "
                             f"'node:index:TYPE;...' with TYPE in {', '.join(OUTPUT_TYPES)}")
    return text


def option_text(option: AtcOption, value: Any, path_text: Callable[[Path], str] = str) -> str:
    """The validated argv text of one option's value."""
    name = option.name
    if option.kind == "choice":
        if value not in option.choices:
            raise _bad(name, f"is {value!r}; expected one of {', '.join(option.choices)}"
                             f"{suggest(str(value), option.choices)}")
        return value
    if option.kind == "int_choice":
        number = {True: 1, False: 0}.get(value, value) if isinstance(value, bool) else value
        if str(number) not in {str(c) for c in option.choices}:
            raise _bad(name, f"is {value!r}; expected one of {', '.join(map(str, option.choices))}")
        return str(number)
    if option.kind == "text":
        return _one_line(name, value)
    if option.kind == "path":
        path = Path(_one_line(name, str(value) if isinstance(value, Path) else value))
        if not path.is_file():
            raise _bad(name, f"file {str(path)!r} does not exist; expected an existing file")
        return path_text(path)
    if option.kind == "names":
        return _names(option, value)
    if option.kind == "ints":
        return ",".join(map(str, _int_list(name, value)))
    if option.kind == "profiles":
        return ";".join(",".join(map(str, p)) for p in parse_profiles(name, value))
    if option.kind == "output_type":
        return _output_type(name, value)
    raise AssertionError(f"unhandled option kind {option.kind!r}")


# ---------------------------------------------------------------------------------------------------------
# Shapes: the exported model's inputs → --input_shape, and what the compiled model accepts
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DynamicShapes:
    """The dynamic-shape option a model was compiled with and its profiles (each a list of dim values)."""

    option: str  # dynamic_batch_size | dynamic_image_size | dynamic_dims
    profiles: tuple[tuple[int, ...], ...]


def _dim_text(dim: Any) -> str:
    return str(dim) if isinstance(dim, int) else "?"


def _parse_shape_override(value: Any, inputs: Sequence[TensorSpec]) -> dict[str, list[int]]:
    names = [spec.name for spec in inputs]
    if isinstance(value, Mapping):
        entries = list(value.items())
    else:
        text = _one_line("input_shape", value)
        entries = []
        for part in text.split(";"):
            name, sep, dims = part.rpartition(":")
            if not sep or not name:
                raise _bad("input_shape", f"part {part!r} of {text!r} is not 'name:d0,d1,...'")
            entries.append((name, dims.split(",")))
    shapes: dict[str, list[int]] = {}
    for name, dims in entries:
        if name not in names:
            raise _bad("input_shape", f"names input {name!r}{suggest(str(name), names)}; the model's inputs "
                                      f"are {', '.join(names)}")
        try:
            shapes[name] = [int(str(d).strip()) for d in dims]
        except (TypeError, ValueError):
            raise _bad("input_shape",
                       f"input {name!r} has dims {dims!r}; expected integers (-1 for dynamic)") from None
        spec = next(s for s in inputs if s.name == name)
        if len(shapes[name]) != len(spec.shape):
            raise _bad("input_shape", f"input {name!r} has {len(shapes[name])} dims; the model's input has "
                                      f"{len(spec.shape)} ({','.join(map(_dim_text, spec.shape))})")
    missing = [n for n in names if n not in shapes]
    if missing:
        raise _bad("input_shape", f"does not give a shape for input(s) {', '.join(missing)}")
    return shapes


def derive_input_shapes(inputs: Sequence[TensorSpec], flags: Mapping[str, Any],
                        input_format: str) -> dict[str, list[int]]:
    """Each input's atc shape: static dims kept, -1 where a dynamic_* option makes the dim variable.

    A symbolic batch dim (axis 0) is 1 unless dynamic_batch_size is set; any other symbolic dim needs a
    dynamic_* option or an explicit input_shape, since atc compiles static shapes.
    """
    if not inputs:
        raise _bad("input_shape", "the ONNX model has no inputs")
    override = flags.get("input_shape")
    if override is not None:
        return _parse_shape_override(override, inputs)
    shapes: dict[str, list[int]] = {}
    for spec in inputs:
        dims: list[int] = []
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int) and dim > 0:
                dims.append(dim)
            elif axis == 0:
                dims.append(-1 if flags.get("dynamic_batch_size") is not None else 1)
            elif flags.get("dynamic_dims") is not None:
                dims.append(-1)
            elif (flags.get("dynamic_image_size") is not None and input_format in ("NCHW", "NHWC")
                  and len(spec.shape) == 4 and axis in ((2, 3) if input_format == "NCHW" else (1, 2))):
                dims.append(-1)
            else:
                raise _bad("input_shape", f"input {spec.name!r} dim {axis} is dynamic ({dim!r}) in shape "
                           f"({', '.join(map(str, spec.shape))}); atc needs a static size: set input_shape "
                           f"(e.g. '{spec.name}:"
                           f"{','.join(_dim_text(d) if i else '1' for i, d in enumerate(spec.shape))}'"
                           f" with the ? filled in) or a dynamic_* option")
        shapes[spec.name] = dims
    return shapes


def check_dynamic(flags: Mapping[str, Any], shapes: Mapping[str, list[int]]) -> DynamicShapes | None:
    """The dynamic option in use, checked against the -1 dims of ``shapes``."""
    chosen = [name for name in DYNAMIC_OPTIONS if flags.get(name) is not None]
    if len(chosen) > 1:
        raise _bad(chosen[1], f"cannot be combined with {chosen[0]}: atc accepts only one of "
                              f"{', '.join(DYNAMIC_OPTIONS)}")
    if not chosen or chosen[0] == "input_shape_range":
        return None
    option = chosen[0]
    wildcards = sum(d == -1 for dims in shapes.values() for d in dims)
    if option == "dynamic_batch_size":
        profiles = [[n] for n in _int_list(option, flags[option])]
        batch_dynamic = [name for name, dims in shapes.items() if dims and dims[0] == -1]
        if not batch_dynamic or wildcards != len(batch_dynamic):
            raise _bad(option, "needs -1 in the batch dim (and only there) of --input_shape; the model's "
                               f"shapes are {render_input_shape(shapes)}: export with a dynamic batch axis")
    else:
        profiles = parse_profiles(option, flags[option])
        per_profile = 2 if option == "dynamic_image_size" else wildcards
        if option == "dynamic_image_size" and wildcards % 2:
            raise _bad(option, f"needs -1 in both H and W; shapes are {render_input_shape(shapes)}")
        if wildcards == 0 or len(profiles[0]) != per_profile:
            raise _bad(option, f"profiles have {len(profiles[0])} values but --input_shape "
                               f"{render_input_shape(shapes)} has {wildcards} dynamic (-1) dims; "
                               f"expected {per_profile} value(s) per profile")
    return DynamicShapes(option=option, profiles=tuple(tuple(p) for p in profiles))


def render_input_shape(shapes: Mapping[str, Sequence[int]]) -> str:
    return ";".join(f"{name}:{','.join(map(str, dims))}" for name, dims in shapes.items())


def default_input_format(flags: Mapping[str, Any]) -> str:
    return "ND" if flags.get("dynamic_dims") is not None else "NCHW"


# ---------------------------------------------------------------------------------------------------------
# Argument lists
# ---------------------------------------------------------------------------------------------------------


def _present(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Flags the recipe set: None means "not set" (the core fills unset options with their default None)."""
    return {k: v for k, v in flags.items() if v is not None and not (k == "extra_args" and not v)}


def autotune_modes(flags: Mapping[str, Any]) -> tuple[str, ...]:
    value = flags.get("autotune")
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    modes = [str(m).strip().upper() for m in items] if isinstance(items, (list, tuple)) else None
    if not modes or any(m not in AOE_JOB_TYPES for m in modes) or len(set(modes)) != len(modes):
        raise _bad("autotune", f"is {value!r}; expected one of {', '.join(AUTOTUNE_CHOICES)}")
    return tuple(m for m in ("RL", "GA") if m in modes)


def uses_aoe(flags: Mapping[str, Any], detected_cann: str | None) -> bool:
    """True when autotune must run through aoe (CANN ≥ 5.1) rather than atc's --auto_tune_mode."""
    if not autotune_modes(flags):
        return False
    version = flags.get("cann_version") or detected_cann
    if version is None:
        raise _bad("autotune", "needs to know the CANN version (atc --auto_tune_mode before 5.1, the aoe "
                               "tool from 5.1): set the flag cann_version, e.g. '5.0.4' or '6.0.1', or "
                               "install the toolkit so porter can read its version")
    try:
        return parse_cann_version(version) >= AOE_FROM_CANN
    except ValueError as error:
        raise _bad("cann_version", str(error)) from None


def _extra_args(flags: Mapping[str, Any]) -> list[str]:
    extra = flags.get("extra_args") or []
    if isinstance(extra, str) or not isinstance(extra, (list, tuple)) or not all(isinstance(a, str) for a in extra):
        raise _bad("extra_args", f"is {extra!r}; expected a list of strings, one argv element each, "
                                 "e.g. ['--op_debug_level=1']")
    return list(extra)


def validate_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and cross-option rules; returns the flags that are set."""
    check_known(flags, known_flag_names())
    present = _present(flags)
    if "precision_mode" in present and "precision_mode_v2" in present:
        raise _bad("precision_mode_v2", "cannot be combined with precision_mode; choose one")
    if "optypelist_for_implmode" in present and present.get("op_select_implmode") not in (
            "high_precision", "high_performance"):
        raise _bad("optypelist_for_implmode", "needs op_select_implmode high_precision or high_performance")
    if "dynamic_dims" in present and present.get("input_format", "ND") != "ND":
        raise _bad("input_format", f"is {present['input_format']!r}; dynamic_dims needs ND")
    om_name = present.get("om_name")
    if om_name is not None and (not isinstance(om_name, str) or not SAFE_NAME.match(om_name)):
        raise _bad("om_name", f"is {om_name!r}; expected a plain file name of letters, digits, '_', '-', '.'")
    autotune_modes(present)
    _extra_args(present)
    return present


def build_atc_argv(onnx_path: Path | str, output_stem: Path | str, inputs: Sequence[TensorSpec],
                   flags: Mapping[str, Any], *, atc: str = "atc", detected_cann: str | None = None,
                   path_text: Callable[[Path], str] = str) -> list[str]:
    """The full atc argument list for one compile.

    ``output_stem`` is atc's --output (atc appends ".om"). ``path_text`` renders file options (bundle.py passes
    one that copies the file into the bundle and returns its bundle-relative path).
    """
    present = validate_flags(flags)
    input_format = present.get("input_format") or default_input_format(present)
    shapes = derive_input_shapes(inputs, present, input_format)
    check_dynamic(present, shapes)
    input_shape = render_input_shape(shapes)
    argv = [atc, f"--framework={FRAMEWORK_ONNX}", f"--model={onnx_path}", f"--output={output_stem}",
            f"--soc_version={option_text(ATC_OPTIONS['soc_version'], present.get('soc_version', 'Ascend310'))}",
            f"--input_format={option_text(ATC_OPTIONS['input_format'], input_format)}",
            f"--input_shape={input_shape}",
            f"--log={option_text(ATC_OPTIONS['log'], present.get('log', 'error'))}"]
    for name, option in ATC_OPTIONS.items():
        if name in ("soc_version", "input_format", "input_shape", "log") or name not in present:
            continue
        argv.append(f"--{name}={option_text(option, present[name], path_text)}")
    modes = autotune_modes(present)
    if modes and not uses_aoe(present, detected_cann):
        argv.append(f"--auto_tune_mode={','.join(modes)}")
    argv.extend(_extra_args(present))
    return argv


def build_aoe_argvs(onnx_path: Path | str, inputs: Sequence[TensorSpec], flags: Mapping[str, Any], *,
                    aoe: str = "aoe", detected_cann: str | None = None) -> list[list[str]]:
    """aoe runs that replace --auto_tune_mode on CANN ≥ 5.1 (subgraph tuning before operator tuning).

    aoe reads the same model options as atc; the tuned knowledge lands in its repository, which the following
    atc compile picks up. Returns [] when no aoe run is needed.
    """
    present = validate_flags(flags)
    if not uses_aoe(present, detected_cann):
        return []
    input_format = present.get("input_format") or default_input_format(present)
    shapes = derive_input_shapes(inputs, present, input_format)
    return [[aoe, f"--framework={FRAMEWORK_ONNX}", f"--model={onnx_path}", f"--job_type={AOE_JOB_TYPES[mode]}",
             f"--input_format={input_format}", f"--input_shape={render_input_shape(shapes)}",
             f"--log={present.get('log', 'error')}"]
            for mode in autotune_modes(present)]


@dataclass(frozen=True)
class CompilePlan:
    """Everything porter decides before running the toolchain for one model."""

    atc_argv: list[str]
    aoe_argvs: list[list[str]]
    input_shapes: dict[str, list[int]]
    dynamic: DynamicShapes | None
    cann_version: str | None


def plan_compile(onnx_path: Path | str, output_stem: Path | str, inputs: Sequence[TensorSpec],
                 flags: Mapping[str, Any], *, atc: str = "atc", aoe: str = "aoe", detected_cann: str | None = None,
                 path_text: Callable[[Path], str] = str) -> CompilePlan:
    present = validate_flags(flags)
    input_format = present.get("input_format") or default_input_format(present)
    shapes = derive_input_shapes(inputs, present, input_format)
    return CompilePlan(
        atc_argv=build_atc_argv(onnx_path, output_stem, inputs, flags, atc=atc, detected_cann=detected_cann,
                                path_text=path_text),
        aoe_argvs=build_aoe_argvs(onnx_path, inputs, flags, aoe=aoe, detected_cann=detected_cann),
        input_shapes=shapes,
        dynamic=check_dynamic(present, shapes),
        cann_version=present.get("cann_version") or detected_cann,
    )


def flag_options() -> dict[str, Option]:
    """The atc options and porter's compile flags as the core's Option table."""
    options = {name: option.to_option() for name, option in ATC_OPTIONS.items()}
    options.update(COMPILE_FLAGS)
    return options


__all__ = [
    "AtcOption", "ATC_OPTIONS", "COMPILE_FLAGS", "NON_ATC_FLAGS", "CompilePlan", "DynamicShapes",
    "build_atc_argv", "build_aoe_argvs", "plan_compile", "validate_flags", "check_known", "known_flag_names",
    "derive_input_shapes", "render_input_shape", "check_dynamic", "autotune_modes", "uses_aoe",
    "parse_profiles", "flag_options", "option_text",
]

"""atc's options as a validated table, and the argument lists of atc (ONNX → .om) and aoe (autotune).

Every value becomes exactly one argv element of the form ``--name=value``: nothing is shell-quoted here, because
nothing here goes through a shell (bundle.py quotes when it writes run.sh for a human to carry).
Facts come from the CANN 5.x–9.0 documentation of atc and aoe (the parameter pages ``atlasatcparam_16_00xx``
and ``aoepar_16_0xx`` on hiascend.com); each option's help names the restriction it enforces.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from porter.api import InputError, Option, TensorSpec
from porter.api import suggest as did_you_mean
from porter_ascend310.toolkit import parse_cann_version

FLAG_FIELD = "target.flags"
# CANN release from which autotune is the separate aoe tool and atc no longer has --auto_tune_mode.
AOE_FROM_CANN = (5, 1)
# aoe job types: 1 = subgraph tuning (SGAT), 2 = operator tuning (OPAT). atc's --auto_tune_mode RL tuned Vector
# operators and GA tuned Cube operators: both were operator tuning, so both become job_type 2; subgraph tuning
# is a separate, optional pass that runs first (the AOE guide's order: subgraphs, then operators).
AOE_SUBGRAPH_TUNING = 1
AOE_OPERATOR_TUNING = 2
AUTOTUNE_CHOICES = ("RL", "GA", "RL,GA")
# dynamic_batch_size / dynamic_image_size / dynamic_dims take (1, 100] profiles; a batch size is in [1, 2048]
PROFILE_COUNT = (2, 100)
MAX_DYNAMIC_BATCH = 2048
# dynamic_dims profiles hold at most 4 values in the documentation through CANN 7.0
DYNAMIC_DIMS_LIMIT = 4
DYNAMIC_DIMS_LIMIT_UNTIL_CANN = (8, 0)
FRAMEWORK_ONNX = "5"


@dataclass(frozen=True)
class AtcOption:
    """One atc command-line option a variant may set.

    ``kind`` says how a recipe value becomes the argv text: ``choice`` (one of ``choices``), ``text`` (any
    one-line string), ``path`` (an existing file), ``dir`` (an existing folder), ``names`` (a list joined with
    ``separator``), ``ints`` (a list of integers joined with ","), ``profiles`` (a list of integer lists: ","
    inside, ";" between), ``output_type`` (a type name or the per-output "node:index:TYPE" form). ``aoe``: aoe
    takes the option too, so a tuning run sees the graph atc compiles.
    """

    name: str
    kind: str
    help: str
    choices: tuple = ()
    separator: str = ","
    default: Any = None
    aoe: bool = True

    def to_option(self) -> Option:
        """The recipe-level declaration the core validates before atc.py checks the value in detail."""
        if self.kind == "choice":
            return Option("str", default=self.default, choices=self.choices, help=self.help)
        if self.kind in ("path", "dir"):
            return Option("path", help=self.help, must_exist=True)
        if self.kind == "int_choice":
            return Option("int", default=self.default, choices=self.choices, help=self.help)
        if self.kind in ("text", "output_type"):
            return Option("str", default=self.default, help=self.help)
        # names, ints and profiles accept a YAML list or the atc string form
        return Option("any", default=self.default, help=self.help)


ATC_OPTIONS: dict[str, AtcOption] = {o.name: o for o in (
    AtcOption("soc_version", "text", "chip: Ascend310, Ascend310P3, Ascend910, ... (others pass through; the chip "
              "name comes from `npu-smi info`)", default="Ascend310", aoe=False),
    AtcOption("input_format", "choice", "layout of the ONNX inputs: NCHW (default), NCDHW or ND (dynamic_dims "
              "needs ND); NHWC only with insert_op_conf (AIPP)", choices=("NCHW", "NCDHW", "ND", "NHWC")),
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
              "excludes precision_mode", aoe=False),
    AtcOption("op_select_implmode", "choice", "operator implementation mode (deprecated for op_precision_mode)",
              choices=("high_performance", "high_precision", "high_precision_for_all",
                       "high_performance_for_all")),
    AtcOption("optypelist_for_implmode", "names", "Ascend IR op types the implmode applies to (an ONNX LSTM "
              "becomes DynamicRNN), e.g. [DynamicRNN, Conv2D]; needs op_select_implmode high_precision or "
              "high_performance"),
    AtcOption("op_precision_mode", "path", ".ini of OpType=mode lines; overrides the two implmode options"),
    AtcOption("fusion_switch_file", "path", "config turning graph/UB fusion passes on or off"),
    AtcOption("buffer_optimize", "choice", "data buffer optimisation",
              choices=("l2_optimize", "l1_optimize", "off_optimize")),
    AtcOption("mdl_bank_path", "dir", "folder of the subgraph-tuning repository (aoe job_type 1 results; "
              "atc's default is $HOME/Ascend/latest/data/aoe/custom/graph/<soc_version>)", aoe=False),
    AtcOption("enable_small_channel", "int_choice", "1 optimises first convolutions with few input channels "
              "(not verified in the documentation)", choices=(0, 1)),
    AtcOption("input_fp16_nodes", "names", "inputs that take fp16 data, e.g. [spect] (porter then writes "
              "those input files in fp16)", separator=";"),
    AtcOption("output_type", "output_type", "model output dtype: FP32, FP16, UINT8, INT8, or per output "
              "'node:index:FP16;...' (needs out_nodes); porter reads the retyped outputs in that dtype"),
    AtcOption("out_nodes", "names", "choose model outputs, e.g. ['node:0', 'node:1']", separator=";"),
    AtcOption("keep_dtype", "path", "file of op names (or OpType::TypeName) that keep their original dtype"),
    AtcOption("modify_mixlist", "path", "JSON editing the black/white/gray lists of allow_mix_precision"),
    AtcOption("insert_op_conf", "path", "AIPP config (image inputs only: the .om then takes the image format "
              "the config names, which porter's runners do not write)"),
    AtcOption("dynamic_batch_size", "ints", "2 to 100 batch profiles of 1..2048, e.g. [1, 4, 8]; the batch "
              "dim becomes -1"),
    AtcOption("dynamic_image_size", "profiles", "2 to 100 H,W profiles, e.g. [[224, 224], [448, 448]]; H and "
              "W of NCHW inputs become -1"),
    AtcOption("dynamic_dims", "profiles", "2 to 100 profiles of one value per dynamic dim across all inputs, "
              "in order, e.g. [[400], [621]] (at most 4 values before CANN 8.0); needs input_format ND"),
    AtcOption("input_shape_range", "text", "older runtime range syntax 'in:[8~20,3,5,-1]' (the runners "
              "still feed the static shape of --input_shape)", aoe=False),
)}

# Options porter adds around atc's own; they are not atc flags themselves.
COMPILE_FLAGS: dict[str, Option] = {
    "autotune": Option("str", choices=AUTOTUNE_CHOICES, help="operator tuning (RL: Vector operators, GA: Cube "
                       "operators): atc --auto_tune_mode for CANN < 5.1, aoe --job_type=2 from CANN 5.1"),
    "subgraph_tuning": Option("bool", default=False, help="run aoe's subgraph tuning (--job_type=1) before "
                              "compiling (CANN >= 5.1; before operator tuning when autotune is set too)"),
    "cann_version": Option("str", help="CANN version the commands are for, e.g. 5.0.4 or 6.0.1 (default: the "
                           "installed toolkit's)"),
    "extra_args": Option("list", default=(), help="further atc arguments, passed through untouched"),
    "om_name": Option("str", help="file name of the .om, without extension (default: the ONNX file's stem)"),
}
# Flags of the ascend310 target that runners.py and plugin.py own: accepted here, not used for atc.
NON_ATC_FLAGS = frozenset({"runner", "outfmt", "device", "warmup_count", "loop", "bundle_dir"})
DYNAMIC_OPTIONS = ("dynamic_batch_size", "dynamic_image_size", "dynamic_dims", "input_shape_range")
OUTPUT_TYPES = ("FP32", "FP16", "UINT8", "INT8")
# the numpy dtype a runner's output file holds for each --output_type
OUTPUT_TYPE_DTYPES = {"FP32": "float32", "FP16": "float16", "UINT8": "uint8", "INT8": "int8"}
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
    if option.kind in ("path", "dir"):
        path = Path(_one_line(name, str(value) if isinstance(value, Path) else value))
        if option.kind == "path" and not path.is_file():
            raise _bad(name, f"file {str(path)!r} does not exist; expected an existing file")
        if option.kind == "dir" and not path.is_dir():
            raise _bad(name, f"{str(path)!r} is not an existing folder; expected the folder of a subgraph-"
                             "tuning repository")
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
        too_big = [p[0] for p in profiles if p[0] > MAX_DYNAMIC_BATCH]
        if too_big:
            raise _bad(option, f"has batch size {too_big[0]}; atc takes batch sizes 1..{MAX_DYNAMIC_BATCH}")
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
    low, high = PROFILE_COUNT
    if not low <= len(profiles) <= high:
        raise _bad(option, f"has {len(profiles)} profile(s); atc takes {low} to {high}")
    if len({tuple(p) for p in profiles}) != len(profiles):
        raise _bad(option, f"repeats a profile in {[list(p) for p in profiles]}")
    return DynamicShapes(option=option, profiles=tuple(tuple(p) for p in profiles))


def check_dynamic_dims_width(flags: Mapping[str, Any], dynamic: DynamicShapes | None,
                             detected_cann: str | None) -> None:
    """dynamic_dims profiles hold at most 4 values in CANN releases before 8.0 (checked where the version is
    known: the cann_version flag or the installed toolkit)."""
    if dynamic is None or dynamic.option != "dynamic_dims" or len(dynamic.profiles[0]) <= DYNAMIC_DIMS_LIMIT:
        return
    version = flags.get("cann_version") or detected_cann
    if version is None:
        return
    try:
        older = parse_cann_version(version) < DYNAMIC_DIMS_LIMIT_UNTIL_CANN
    except ValueError as error:
        raise _bad("cann_version", str(error)) from None
    if older:
        raise _bad("dynamic_dims", f"profiles have {len(dynamic.profiles[0])} values; CANN {version} takes at "
                                   f"most {DYNAMIC_DIMS_LIMIT} dynamic dims")


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
    if not modes or any(m not in ("RL", "GA") for m in modes) or len(set(modes)) != len(modes):
        raise _bad("autotune", f"is {value!r}; expected one of {', '.join(AUTOTUNE_CHOICES)}")
    return tuple(m for m in ("RL", "GA") if m in modes)


def uses_aoe(flags: Mapping[str, Any], detected_cann: str | None) -> bool:
    """True when tuning must run through aoe (CANN ≥ 5.1) rather than atc's --auto_tune_mode."""
    subgraphs = bool(flags.get("subgraph_tuning"))
    if not autotune_modes(flags) and not subgraphs:
        return False
    name = "autotune" if autotune_modes(flags) else "subgraph_tuning"
    version = flags.get("cann_version") or detected_cann
    if version is None:
        raise _bad(name, "needs to know the CANN version (atc --auto_tune_mode before 5.1, the aoe "
                         "tool from 5.1): set the flag cann_version, e.g. '5.0.4' or '6.0.1', or "
                         "install the toolkit so porter can read its version")
    try:
        with_aoe = parse_cann_version(version) >= AOE_FROM_CANN
    except ValueError as error:
        raise _bad("cann_version", str(error)) from None
    if subgraphs and not with_aoe:
        raise _bad("subgraph_tuning", f"is aoe's (CANN 5.1 on); CANN {version}'s atc --auto_tune_mode tunes "
                                      "operators only")
    return with_aoe


def aoe_job_types(flags: Mapping[str, Any]) -> list[int]:
    """aoe runs in order: subgraph tuning first (it fixes the partitioning operator tuning then sees)."""
    jobs = [AOE_SUBGRAPH_TUNING] if flags.get("subgraph_tuning") else []
    return jobs + ([AOE_OPERATOR_TUNING] if autotune_modes(flags) else [])


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
    if present.get("input_format") == "NHWC" and "insert_op_conf" not in present:
        raise _bad("input_format", "is 'NHWC', which atc takes for ONNX models only with insert_op_conf "
                                   "(AIPP); an ONNX model's inputs are NCHW, NCDHW or ND")
    output_type = present.get("output_type")
    if isinstance(output_type, str) and output_type not in OUTPUT_TYPES and "out_nodes" not in present:
        raise _bad("output_type", f"is {output_type!r}: the per-output form 'node:index:TYPE' needs out_nodes "
                                  "naming those outputs")
    if not isinstance(present.get("subgraph_tuning", False), bool):
        raise _bad("subgraph_tuning", f"is {present['subgraph_tuning']!r}; expected true or false")
    om_name = present.get("om_name")
    if om_name is not None and (not isinstance(om_name, str) or not SAFE_NAME.match(om_name)):
        raise _bad("om_name", f"is {om_name!r}; expected a plain file name of letters, digits, '_', '-', '.'")
    autotune_modes(present)
    _extra_args(present)
    return present


@dataclass(frozen=True)
class CheckedFlags:
    """A compile's flags after the one validation: the set flags, and the shapes and profiles they give."""

    flags: Mapping[str, Any]  # the flags the recipe set, each checked
    input_format: str
    input_shapes: dict[str, list[int]]
    dynamic: DynamicShapes | None


def check_flags(inputs: Sequence[TensorSpec], flags: Mapping[str, Any],
                detected_cann: str | None = None) -> CheckedFlags:
    """Every check on a compile's flags, in one place: names, values, cross-option rules, shapes, profiles."""
    present = validate_flags(flags)
    input_format = present.get("input_format") or default_input_format(present)
    shapes = derive_input_shapes(inputs, present, input_format)
    dynamic = check_dynamic(present, shapes)
    check_dynamic_dims_width(present, dynamic, detected_cann)
    uses_aoe(present, detected_cann)  # a tuning flag needs to know the CANN version
    return CheckedFlags(flags=present, input_format=input_format, input_shapes=shapes, dynamic=dynamic)


def _atc_argv(checked: CheckedFlags, onnx_path: Path | str, output_stem: Path | str, *, atc: str,
              detected_cann: str | None, path_text: Callable[[Path], str]) -> list[str]:
    present = checked.flags
    argv = [atc, f"--framework={FRAMEWORK_ONNX}", f"--model={onnx_path}", f"--output={output_stem}",
            f"--soc_version={option_text(ATC_OPTIONS['soc_version'], present.get('soc_version', 'Ascend310'))}",
            f"--input_format={option_text(ATC_OPTIONS['input_format'], checked.input_format)}",
            f"--input_shape={render_input_shape(checked.input_shapes)}",
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


def _aoe_argvs(checked: CheckedFlags, onnx_path: Path | str, *, aoe: str, detected_cann: str | None,
               path_text: Callable[[Path], str]) -> list[list[str]]:
    present = checked.flags
    if not uses_aoe(present, detected_cann):
        return []
    common = [f"--framework={FRAMEWORK_ONNX}", f"--model={onnx_path}",
              f"--input_format={option_text(ATC_OPTIONS['input_format'], checked.input_format)}",
              f"--input_shape={render_input_shape(checked.input_shapes)}",
              f"--log={option_text(ATC_OPTIONS['log'], present.get('log', 'error'))}"]
    for name, option in ATC_OPTIONS.items():
        if option.aoe and name in present and name not in ("input_format", "input_shape", "log"):
            common.append(f"--{name}={option_text(option, present[name], path_text)}")
    return [[aoe, *common[:2], f"--job_type={job}", *common[2:]] for job in aoe_job_types(present)]


def build_atc_argv(onnx_path: Path | str, output_stem: Path | str, inputs: Sequence[TensorSpec],
                   flags: Mapping[str, Any], *, atc: str = "atc", detected_cann: str | None = None,
                   path_text: Callable[[Path], str] = str) -> list[str]:
    """The full atc argument list for one compile.

    ``output_stem`` is atc's --output (atc appends ".om"). ``path_text`` renders file options (bundle.py passes
    one that copies the file into the bundle and returns its bundle-relative path).
    """
    return _atc_argv(check_flags(inputs, flags, detected_cann), onnx_path, output_stem, atc=atc,
                     detected_cann=detected_cann, path_text=path_text)


def build_aoe_argvs(onnx_path: Path | str, inputs: Sequence[TensorSpec], flags: Mapping[str, Any], *,
                    aoe: str = "aoe", detected_cann: str | None = None,
                    path_text: Callable[[Path], str] = str) -> list[list[str]]:
    """aoe runs that replace --auto_tune_mode on CANN ≥ 5.1 (subgraph tuning before operator tuning).

    aoe gets the model options atc gets (shapes, the dynamic_* profiles, precision, implmode, fusion switches:
    every option whose ``aoe`` is set), so it tunes the graph atc then compiles; the tuned knowledge lands in
    its repository, which that compile picks up. Returns [] when no aoe run is needed.
    """
    return _aoe_argvs(check_flags(inputs, flags, detected_cann), onnx_path, aoe=aoe, detected_cann=detected_cann,
                      path_text=path_text)


@dataclass(frozen=True)
class CompilePlan:
    """Everything porter decides before running the toolchain for one model."""

    atc_argv: list[str]
    aoe_argvs: list[list[str]]
    input_shapes: dict[str, list[int]]
    dynamic: DynamicShapes | None
    cann_version: str | None
    flags: Mapping[str, Any]  # the checked flags the plan was made from


def plan_compile(onnx_path: Path | str, output_stem: Path | str, inputs: Sequence[TensorSpec],
                 flags: Mapping[str, Any] | CheckedFlags, *, atc: str = "atc", aoe: str = "aoe",
                 detected_cann: str | None = None, path_text: Callable[[Path], str] = str) -> CompilePlan:
    """atc's and aoe's argument lists for one compile, from flags checked once (pass a :class:`CheckedFlags` to
    plan the same compile again, e.g. with a bundle's paths, without checking again)."""
    checked = flags if isinstance(flags, CheckedFlags) else check_flags(inputs, flags, detected_cann)
    return CompilePlan(
        atc_argv=_atc_argv(checked, onnx_path, output_stem, atc=atc, detected_cann=detected_cann,
                           path_text=path_text),
        aoe_argvs=_aoe_argvs(checked, onnx_path, aoe=aoe, detected_cann=detected_cann, path_text=path_text),
        input_shapes=checked.input_shapes,
        dynamic=checked.dynamic,
        cann_version=checked.flags.get("cann_version") or detected_cann,
        flags=checked.flags,
    )


def flag_options() -> dict[str, Option]:
    """The atc options and porter's compile flags as the core's Option table."""
    options = {name: option.to_option() for name, option in ATC_OPTIONS.items()}
    options.update(COMPILE_FLAGS)
    return options


__all__ = [
    "AtcOption", "ATC_OPTIONS", "CheckedFlags", "check_flags", "COMPILE_FLAGS", "NON_ATC_FLAGS", "CompilePlan",
    "DynamicShapes",
    "build_atc_argv", "build_aoe_argvs", "aoe_job_types", "check_dynamic_dims_width",
    "OUTPUT_TYPES", "OUTPUT_TYPE_DTYPES", "plan_compile", "validate_flags", "check_known", "known_flag_names",
    "derive_input_shapes", "render_input_shape", "check_dynamic", "autotune_modes", "uses_aoe",
    "parse_profiles", "flag_options", "option_text",
]

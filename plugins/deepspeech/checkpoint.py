"""Reading and writing deepspeech.pytorch V3 checkpoints without running pickled code.

A V3 .ckpt is a PyTorch-Lightning pickle whose hyper-parameters hold omegaconf DictConfigs, deepspeech_pytorch
enums (RNNType's values are torch.nn classes) and typing references. `torch.load(weights_only=True)` refuses
them and a plain `torch.load` would run whatever the pickle names. The restricted unpickler here admits tensors,
storages and plain containers, turns those config classes into inert placeholders that are then converted to
plain data — nothing is imported — and refuses every other global with an InputError naming it.
"""
from __future__ import annotations

import _compat_pickle
import json
import pickle
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch

from porter.api import InputError, atomic_path, describe_yaml_error

from .checkpoint_config import TORCH_NN_CLASS_TO_RNN, labels_from, model_config_from, spect_config_from
from .datasets import read_utf8
from .model import DeepSpeech, ModelConfig, SpectConfig

LIGHTNING_VERSION = "1.2.0"  # the 1.x layout V3.0 wrote; no Lightning is imported or needed

# Modules whose classes may appear in V3 checkpoints as configuration or bookkeeping. They become inert
# placeholders: recorded with their arguments and state, never imported, never called.
INERT_MODULE_PREFIXES = (
    "omegaconf", "deepspeech_pytorch", "hydra", "hydra_configs", "pytorch_lightning", "lightning",
    "lightning_fabric", "torchmetrics", "typing", "enum", "torch.nn", "numpy", "pathlib", "argparse", "datetime",
)
ALLOWED_CALLABLES = {
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("collections", "OrderedDict"),
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),
    ("torch", "Size"),
    ("torch", "device"),
}
# Builtin types appear as omegaconf type references (ref_type=int, object_type=dict ...); calling them is harmless.
SAFE_BUILTIN_TYPES = {"object", "int", "float", "str", "bool", "dict", "list", "tuple", "set", "frozenset",
                      "bytes", "bytearray", "complex", "slice", "range"}
METRIC_STATE_PREFIXES = ("wer.", "cer.")


class InertObject:
    """Stands for an instance of a class the pickle named; holds the data it was given."""

    _module = "?"
    _qualname = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__["_args"] = args
        obj.__dict__["_state"] = None
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["_state"] = state

    def __setitem__(self, key, value):  # dict subclasses are filled with SETITEMS
        items = self.__dict__.setdefault("_items", {})
        items[key] = value

    def append(self, value):
        self.__dict__.setdefault("_list", []).append(value)

    def extend(self, values):
        self.__dict__.setdefault("_list", []).extend(values)

    def __class_getitem__(cls, params):
        """``typing.List[str]`` and the like: another placeholder class, named for its parameters."""
        params = params if isinstance(params, tuple) else (params,)
        names = ", ".join(_type_name(p) for p in params)
        subscripted = inert_class(cls._module, f"{cls._qualname}[{names}]")
        subscripted._type_args = params
        return subscripted

    def __repr__(self):
        return f"<inert {self._module}.{self._qualname}>"


def _type_name(obj) -> str:
    if isinstance(obj, type) and issubclass(obj, InertObject):
        return f"{obj._module}.{obj._qualname}"
    if isinstance(obj, type):
        return obj.__qualname__
    return repr(obj)


def inert_class(module: str, name: str) -> type:
    return type(name.replace(".", "_"), (InertObject,), {"_module": module, "_qualname": name})


def is_placeholder_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, InertObject)


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str, use: str = ""):
        self.global_name = f"{module}.{name}"
        self.use = use  # why an admitted global was refused where it was applied
        super().__init__(f"refused global {self.global_name}" + (f" ({use})" if use else ""))


def subscript_placeholder(obj, key):
    """Stands in for ``_operator.getitem``, which pickle uses to spell a subscripted generic (``List[str]`` is
    ``getitem(List, str)``). Only a placeholder class may be subscripted: on a real object getitem would reach
    into it (a dict of callables, a module's namespace) and hand back whatever it holds."""
    if not is_placeholder_class(obj):
        raise RefusedGlobal("_operator", "getitem", f"applied to a {type(obj).__name__}, not to a type placeholder")
    return obj[key]


def plain_dict_for_defaultdict(default_factory=None, *args, **kwargs) -> dict:
    """Stands in for ``collections.defaultdict``: the pickle's items land in a plain dict and the factory, a
    global the unpickler has already vetted like any other, is dropped without ever being called."""
    if default_factory is not None and not callable(default_factory):
        raise pickle.UnpicklingError(f"defaultdict factory {type(default_factory).__name__} is not callable")
    return dict(*args, **kwargs)


# Admitted globals that are replaced by a guarded stand-in of the same calling convention.
STAND_INS = {
    ("collections", "defaultdict"): plain_dict_for_defaultdict,
    ("_operator", "getitem"): subscript_placeholder,
}


def is_dtype(module: str, name: str) -> bool:
    return module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        # Protocol-2 pickles (torch.save's default) spell builtins as Python 2 did; the result is still checked.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module == "builtins" and name in SAFE_BUILTIN_TYPES:
            return super().find_class(module, name)
        if (module, name) in ALLOWED_CALLABLES:
            return super().find_class(module, name)
        if (module, name) in STAND_INS:
            return STAND_INS[(module, name)]
        if is_dtype(module, name):
            return getattr(torch, name)
        if module == "torch.nn.parameter" and name == "Parameter":
            return torch.nn.Parameter
        if module == "torch" and name.endswith("Storage"):
            return super().find_class(module, name)
        if any(module == p or module.startswith(p + ".") for p in INERT_MODULE_PREFIXES):
            return inert_class(module, name)
        raise RefusedGlobal(module, name)


def restricted_load(file, **kwargs):
    return RestrictedUnpickler(file, **kwargs).load()


# Handed to torch.load as its pickle_module: torch subclasses our Unpickler for storages and persistent ids.
restricted_pickle_module = SimpleNamespace(
    __name__="porter_restricted_pickle", Unpickler=RestrictedUnpickler, load=restricted_load,
    UnpicklingError=pickle.UnpicklingError,
)


def to_plain(obj):
    """Converts placeholders to plain data: DictConfig -> dict, enum -> its value, nn.LSTM -> 'lstm'."""
    if isinstance(obj, type) and issubclass(obj, InertObject):
        if obj._module.startswith("torch.nn") and obj._qualname in TORCH_NN_CLASS_TO_RNN:
            return TORCH_NN_CLASS_TO_RNN[obj._qualname]
        return f"{obj._module}.{obj._qualname}"
    if isinstance(obj, InertObject):
        state = obj.__dict__.get("_state")
        module = obj._module
        if module.startswith("omegaconf") and isinstance(state, dict):
            if "_content" in state:
                content = to_plain(state["_content"])
                if isinstance(content, dict):
                    object_type = getattr(state.get("_metadata"), "__dict__", {}).get("_state")
                    type_ref = object_type.get("object_type") if isinstance(object_type, dict) else None
                    if isinstance(type_ref, type) and issubclass(type_ref, InertObject):
                        content["_config_type"] = type_ref._qualname
                return content
            if "_val" in state:
                return to_plain(state["_val"])
        args = obj.__dict__.get("_args", ())
        if len(args) == 1 and state is None:  # an Enum member rebuilt as EnumClass(value)
            return to_plain(args[0])
        if "_items" in obj.__dict__:
            return {to_plain(k): to_plain(v) for k, v in obj.__dict__["_items"].items()}
        if isinstance(state, dict):
            return {k: to_plain(v) for k, v in state.items()}
        return repr(obj)
    if isinstance(obj, dict):
        return {to_plain(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


@dataclass
class LoadedCheckpoint:
    state_dict: dict
    labels: list
    model_cfg: ModelConfig
    spect_cfg: SpectConfig
    epoch: int = 0
    global_step: int = 0
    source: str = ""  # path
    source_format: str = ""  # "lightning-ckpt" or "state_dict+sidecar"
    extra: dict = field(default_factory=dict)


def read_pickle_archive(path: Path):
    try:
        return torch.load(str(path), map_location="cpu", pickle_module=restricted_pickle_module, weights_only=False)
    except RefusedGlobal as exc:
        use = f", {exc.use}" if exc.use else ""
        raise InputError(f"the checkpoint's pickle names the global {exc.global_name}{use}, which could run code; "
                         "refused (only tensors, plain containers and V3 config classes are read)", file=path) from None
    except InputError:
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, RuntimeError, ValueError, OSError, KeyError,
            AttributeError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}); "
                         "expected a V3 .ckpt or a torch-saved state_dict", file=path) from None


def find_sidecar(path: Path) -> Path | None:
    for candidate in (Path(str(path) + ".yaml"), Path(str(path) + ".json"),
                      path.with_suffix(".yaml"), path.with_suffix(".json")):
        if candidate.is_file() and candidate != path:
            return candidate
    return None


def read_sidecar(sidecar: Path) -> dict:
    text = read_utf8(sidecar, what="sidecar config")
    if sidecar.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc}); expected a mapping with labels, model_cfg and spect_cfg",
                             file=sidecar) from None
    else:
        import yaml
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"{describe_yaml_error(exc)}; expected a mapping with labels, model_cfg and spect_cfg",
                             file=sidecar) from None
    if not isinstance(data, dict) or "labels" not in data:
        raise InputError("sidecar must be a mapping with labels, model_cfg and spect_cfg", file=sidecar)
    return data


def refuse_non_finite(state_dict: dict, path) -> None:
    """A NaN or Inf weight makes every output NaN; name the first such tensor instead of porting it."""
    for key, tensor in state_dict.items():
        if tensor.is_floating_point() or tensor.is_complex():
            finite = torch.isfinite(tensor)
            if not bool(finite.all()):
                bad = int((~finite).sum())
                raise InputError(f"the tensor holds {bad} NaN/Inf value(s) of {tensor.numel()}; expected "
                                 "finite weights", file=path, field=key)


def load_checkpoint(path) -> LoadedCheckpoint:
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint file not found", file=path)
    obj = read_pickle_archive(path)
    if isinstance(obj, dict) and "state_dict" in obj:
        try:
            hparams = to_plain(obj.get("hyper_parameters") or {})
        except RecursionError:
            raise InputError("hyper_parameters nest too deeply (a reference cycle?); expected V3 config objects",
                             file=path, field="hyper_parameters") from None
        if not isinstance(hparams, dict):
            raise InputError(f"is a {type(hparams).__name__}; expected a mapping with labels, model_cfg and "
                             "spect_cfg", file=path, field="hyper_parameters")
        if not isinstance(obj["state_dict"], dict):
            raise InputError(f"is a {type(obj['state_dict']).__name__}; expected a mapping of tensor names to "
                             "tensors", file=path, field="state_dict")
        state_dict = {k: v for k, v in obj["state_dict"].items()}
        source_format = "lightning-ckpt"
        sidecar = None
        if not hparams.get("labels"):
            sidecar = find_sidecar(path)
            if sidecar is None:
                raise InputError("checkpoint has no hyper_parameters.labels and no .yaml/.json sidecar",
                                 file=path, field="hyper_parameters")
            hparams = read_sidecar(sidecar)
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state_dict = dict(obj)
        sidecar = find_sidecar(path)
        if sidecar is None:
            raise InputError("a plain state_dict needs a sidecar config (<ckpt>.yaml or <ckpt>.json with labels, "
                             "model_cfg, spect_cfg)", file=path)
        hparams = read_sidecar(sidecar)
        source_format = "state_dict+sidecar"
        obj = {}
    else:
        raise InputError(f"unrecognised checkpoint content ({type(obj).__name__}); expected a V3 Lightning "
                         "checkpoint with state_dict or a plain state_dict", file=path)
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(f"state_dict entry is not a tensor: {bad[0]}", file=path, field="state_dict")
    refuse_non_finite(state_dict, path)
    config_file = sidecar or path  # where the configuration was read from
    return LoadedCheckpoint(
        state_dict=state_dict,
        labels=labels_from(hparams.get("labels"), config_file),
        model_cfg=model_config_from(hparams.get("model_cfg"), state_dict, config_file),
        spect_cfg=spect_config_from(hparams.get("spect_cfg"), config_file),
        epoch=_count(obj, "epoch", path),
        global_step=_count(obj, "global_step", path),
        source=str(path),
        source_format=source_format,
        extra=to_plain(obj.get("porter", {})) if isinstance(obj.get("porter", {}), dict) else {},
    )


def _count(obj: dict, key: str, path) -> int:
    value = obj.get(key, 0) or 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"is {value!r}; expected a whole number (Lightning's bookkeeping)", file=path, field=key)
    return value


def _module_for(loaded: LoadedCheckpoint) -> DeepSpeech:
    try:
        return DeepSpeech(loaded.labels, loaded.model_cfg, loaded.spect_cfg)
    except ValueError as exc:
        raise InputError(str(exc), file=loaded.source, field="model_cfg") from None


def check_tensors_fit(loaded: LoadedCheckpoint) -> dict:
    """Raise an InputError naming the first tensor that does not fit the checkpoint's own config; returns the
    model weights (metric state left out). The module is built on the meta device: shapes only, no memory."""
    with torch.device("meta"):
        expected = _module_for(loaded).state_dict()
    weights = {k: v for k, v in loaded.state_dict.items() if not k.startswith(METRIC_STATE_PREFIXES)}
    for key, tensor in expected.items():
        if key not in weights:
            raise InputError(f"tensor {key} (shape {list(tensor.shape)}) missing for model_cfg {loaded.model_cfg}",
                             file=loaded.source, field=key)
        if tuple(weights[key].shape) != tuple(tensor.shape):
            raise InputError(f"tensor {key} has shape {list(weights[key].shape)}; model_cfg {loaded.model_cfg} "
                             f"with {len(loaded.labels)} labels expects {list(tensor.shape)}",
                             file=loaded.source, field=key)
    unexpected = sorted(set(weights) - set(expected))
    if unexpected:
        raise InputError(f"tensor {unexpected[0]} is not part of the model for model_cfg {loaded.model_cfg} "
                         f"({len(unexpected)} unexpected)", file=loaded.source, field=unexpected[0])
    return weights


def build_model(loaded: LoadedCheckpoint) -> DeepSpeech:
    """The DeepSpeech module of a loaded checkpoint in eval mode; mismatched tensors are named."""
    weights = check_tensors_fit(loaded)
    model = _module_for(loaded)
    model.load_state_dict(weights, strict=True)
    return model.eval()


def v3_model_cfg_dict(cfg: ModelConfig) -> dict:
    out = {"rnn_type": cfg.rnn_type, "hidden_size": cfg.hidden_size, "hidden_layers": cfg.hidden_layers,
           "bidirectional": cfg.bidirectional}
    if not cfg.bidirectional:
        out["lookahead_context"] = cfg.lookahead_context
    return out


def atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, str(tmp))


def save_checkpoint(path, model: DeepSpeech, *, labels, model_cfg: ModelConfig, spect_cfg: SpectConfig,
                    epoch: int = 0, global_step: int = 0, extra: dict | None = None,
                    optim_cfg: dict | None = None) -> Path:
    """Weights-only checkpoint in V3's Lightning layout, with plain containers only."""
    state_dict = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    ckpt = {
        "epoch": int(epoch),
        "global_step": int(global_step),
        "pytorch-lightning_version": LIGHTNING_VERSION,
        "state_dict": state_dict,
        "hparams_name": "kwargs",
        "hyper_parameters": {
            "labels": list(labels),
            "model_cfg": v3_model_cfg_dict(model_cfg),
            "precision": 32,
            "optim_cfg": dict(optim_cfg or {"learning_rate": 1.5e-4, "learning_anneal": 0.99,
                                            "weight_decay": 1e-5, "eps": 1e-8, "betas": [0.9, 0.999]}),
            "spect_cfg": asdict(spect_cfg),
        },
    }
    if extra:
        ckpt["porter"] = json.loads(json.dumps(extra))
    atomic_torch_save(ckpt, Path(path))
    return Path(path)

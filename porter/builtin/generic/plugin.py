"""Hooks of the generic model plugin: models ``onnx``, ``torch_export`` and ``torchscript``, dataset ``tensors``,
and output-agreement metrics.

How agreement is scored: these models' specs set ``scores_against_reference``, so the plan runs the framework
reference (``porter_run_reference``) once per dataset, whether or not the recipe has a reference variant, and
hands its OutputSet to ``porter_score`` as ``reference``. When the dataset brings its own reference outputs
(``tensors`` with ``references:``), those are the ground truth instead: what the user's framework produced is
what every variant, the reference run included, is held to.

Every stage hook answers only for the names registered here and returns ``None`` for any other.
"""
from __future__ import annotations

from pathlib import Path

from porter.api import DatasetSpec, InputError, ModelSpec, Option, hookimpl

from . import agreement_metrics

PLUGIN_VERSION = "1"
# 2: random inputs say so as an InputSet note, which cached preprocess artifacts of version 1 lack
TENSORS_VERSION = "2"
ONNX = "onnx"
TORCH_EXPORT = "torch_export"
TORCHSCRIPT = "torchscript"
MODELS = (ONNX, TORCH_EXPORT, TORCHSCRIPT)
TENSORS = "tensors"

_NAMES = {
    "input_names": Option("list", help="the tensors to feed (an ONNX graph is cut there; for a torch program, "
                                       "the names its inputs get, in order)"),
    "output_names": Option("list", help="the outputs to keep (an ONNX graph is cut there; for a torch program, "
                                        "the names its outputs get, in order)"),
}
_TRUST = Option("bool", False, help="allow loading a file that carries code (a TorchScript program, or a .pt2 "
                                    "whose objects need a full unpickle); only for files you trust")
_TORCH_EXPORT_OPTIONS = {
    "opset": Option("int", 17, min=7, max=20,
                    help="ONNX opset of the export (torch's TorchScript-based exporter writes 7 to 20)"),
    "tolerance": Option("float", 1e-4, min=0.0, help="largest |onnx - torch| accepted by the export's check"),
    "dynamic": Option("bool", True, help="axes dynamic in the program (or named in shapes) stay dynamic in ONNX"),
}


@hookimpl
def porter_register_models():
    common = {"scores_against_reference": True, "version": PLUGIN_VERSION}
    return [
        ModelSpec(ONNX, "any ONNX model, as a file or a folder holding it and its external data", options={
            "path": Option("path", required=True, help="an .onnx file, or a folder with one .onnx and its external "
                                                       "data (then the data is part of the cache key)"),
            **_NAMES,
            "shapes": Option("dict", help="input name -> list of dims: an int makes that axis static, a name makes "
                                          "it dynamic, null keeps it"),
        }, export_options={"tolerance": Option("float", 1e-5, min=0.0, help="largest |edited - as given| accepted when "
                                                                   "input/output names or shapes change the graph")},
            **common),
        ModelSpec(TORCH_EXPORT, "a torch.export program saved with torch.export.save (.pt2), loaded as data",
                  options={"path": Option("path", required=True, help="the .pt2 archive"), **_NAMES,
                           "trust_code": _TRUST},
                  export_options=_TORCH_EXPORT_OPTIONS, **common),
        ModelSpec(TORCHSCRIPT, "a TorchScript program (torch.jit.save); runs its code, so needs trust_code: true",
                  options={"path": Option("path", required=True, help="the TorchScript .pt file"), **_NAMES,
                           "trust_code": _TRUST,
                           "shapes": Option("dict", help="input name -> list of dims (ints static, names dynamic): "
                                                         "TorchScript records none, random inputs need them"),
                           "dtypes": Option("dict", help="input name -> numpy dtype name (default float32)")},
                  export_options=_TORCH_EXPORT_OPTIONS, **common),
    ]


@hookimpl
def porter_register_datasets():
    return [DatasetSpec(TENSORS, "model inputs as .npz (a folder, one sample per file, or one batch file), with "
                                 "optional reference outputs; random inputs when none are given", options={
        "inputs": Option("path", help="a folder of .npz (one sample per file, arrays named like the model's "
                                      "inputs) or one .npz whose rows are the samples; without it, random inputs"),
        "references": Option("path", help="reference outputs in the same layout as inputs (arrays named like the "
                                          "model's outputs); without it, the framework reference run"),
        "limit": Option("int", min=1, help="use only the first N samples"),
        "random_samples": Option("int", 8, min=1, max=100_000,
                                 help="how many random samples to draw when there are no inputs"),
        "seed": Option("int", 0, min=0, max=2**32 - 1, help="seed of the random inputs"),
        "dims": Option("dict", {}, help="dynamic dim name -> size, for random inputs"),
    }, version=TENSORS_VERSION)]


@hookimpl
def porter_register_metrics():
    return list(agreement_metrics.METRIC_SPECS)


def _input_specs(model):
    if model.name == ONNX:
        from porter.api import model_io

        from . import onnx_model

        return model_io(onnx_model.load_model(model.options, with_data=False))[0]
    from . import torch_model

    return torch_model.input_specs(model.name, model.options)


@hookimpl
def porter_preprocess(dataset, model, workdir: Path):
    if dataset.name != TENSORS:
        return None
    from .tensors import build_input_set

    # another plugin's model may take tensors too; it then declares no specs here and the arrays go as given
    specs = _input_specs(model) if model.name in MODELS else None
    return build_input_set(dataset.options, specs, model=model.name, workdir=Path(workdir))


# torch is imported only by the stages of the torch forms: an ONNX-only run never pays for it
@hookimpl
def porter_export(model, inputs, workdir: Path):
    if model.name not in MODELS:
        return None
    if model.name == ONNX:
        from . import onnx_model

        return onnx_model.export(model.options, model.export, inputs, Path(workdir))
    from . import torch_model

    return torch_model.export(model.name, model.options, model.export, inputs, Path(workdir))


@hookimpl
def porter_run_reference(model, inputs, workdir: Path):
    if model.name not in MODELS:
        return None
    if model.name == ONNX:
        from . import onnx_model

        return onnx_model.run_reference(model.options, inputs, Path(workdir))
    from . import torch_model

    return torch_model.run_reference(model.name, model.options, inputs, Path(workdir))


@hookimpl
def porter_score(model, metrics, inputs, outputs, reference):
    if model.name not in MODELS:
        return None
    from .tensors import dataset_references

    truth = dataset_references(inputs) or reference
    if truth is None:
        raise InputError(f"model {model.name!r} is scored against reference outputs, and there are none: give "
                         "dataset.options.references or let porter run the framework reference", field="dataset")
    return agreement_metrics.score(tuple(metrics or ()), inputs, outputs, truth)

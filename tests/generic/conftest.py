"""Fixtures for the generic model plugin: the worked example's tiny CNN, and small models in each form."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from generic_files import load_example_module


@pytest.fixture(scope="session")
def example_module():
    return load_example_module()


@pytest.fixture(scope="session")
def tiny_cnn(tmp_path_factory, example_module) -> Path:
    """The worked example's files (model.onnx, inputs/, references/) with four samples."""
    return example_module.write_example(tmp_path_factory.mktemp("tiny_cnn"), samples=4)


@pytest.fixture(scope="session")
def torch_forms(tmp_path_factory, example_module) -> dict:
    """The tiny CNN saved as a torch.export program (dynamic batch) and as TorchScript."""
    import torch

    out = tmp_path_factory.mktemp("torch_forms")
    model = example_module.build()
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.zeros(2, 1, 28, 28),), dynamic_shapes={"image": {0: batch}})
    torch.export.save(program, out / "cnn.pt2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(model).save(str(out / "cnn.ts"))
    return {"pt2": out / "cnn.pt2", "torchscript": out / "cnn.ts", "module": model}


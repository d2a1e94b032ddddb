"""Each model form of the generic plugin through its hooks: the ONNX file (plain, external data, cut,
reshaped), a torch.export program and a TorchScript file; and the refusals that keep code from running."""
from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from generic_files import configs

from porter.errors import InputError
from porter.plugins import load_plugins


@pytest.fixture(scope="module")
def plugins():
    return load_plugins(use_entry_points=False)


def _stages(plugins, model, dataset, tmp_path: Path):
    hook = plugins.hook
    inputs = hook.porter_preprocess(dataset=dataset, model=model, workdir=_dir(tmp_path / "pre"))
    exported = hook.porter_export(model=model, inputs=inputs, workdir=_dir(tmp_path / "export"))
    reference = hook.porter_run_reference(model=model, inputs=inputs, workdir=_dir(tmp_path / "ref"))
    return inputs, exported, reference


def _dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _torch_outputs(module, image):
    with torch.inference_mode():
        return [t.numpy() for t in module(torch.from_numpy(image))]


def _dataset(plugins, tiny_cnn, **extra):
    return configs(plugins, "datasets", "tensors", {"inputs": str(tiny_cnn / "inputs"), **extra})


def test_onnx_file_as_given(plugins, tiny_cnn, tmp_path):
    model = configs(plugins, "models", "onnx", {"path": str(tiny_cnn / "model.onnx")})
    inputs, exported, reference = _stages(plugins, model, _dataset(plugins, tiny_cnn), tmp_path)
    assert [s.name for s in exported.inputs] == ["image"] and exported.inputs[0].shape == ("batch", 1, 28, 28)
    assert [s.name for s in exported.outputs] == ["logits", "embedding"]
    assert exported.checks == ()  # nothing changed: the file is its own reference
    assert reference.output_names == ("logits", "embedding") and len(reference) == 4
    assert "graph optimisations off" in reference.details["framework"]
    truth = np.load(tiny_cnn / "references" / "001.npz")
    np.testing.assert_allclose(reference.load(1)["logits"], truth["logits"], atol=1e-5)


def test_onnx_folder_with_external_data(plugins, tiny_cnn, tmp_path):
    folder = tmp_path / "external"
    folder.mkdir()
    proto = onnx.load(str(tiny_cnn / "model.onnx"))
    onnx.save_model(proto, str(folder / "cnn.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="cnn.weights", size_threshold=0)
    assert (folder / "cnn.weights").stat().st_size > 1000
    model = configs(plugins, "models", "onnx", {"path": str(folder)})
    inputs, exported, reference = _stages(plugins, model, _dataset(plugins, tiny_cnn), tmp_path)
    # the export holds the weights itself, so later stages need not know where they came from
    assert len(onnx.load(str(exported.path)).graph.initializer) > 0
    truth = np.load(tiny_cnn / "references" / "000.npz")
    np.testing.assert_allclose(reference.load(0)["embedding"], truth["embedding"], atol=1e-5)


def test_onnx_output_names_cut_the_graph_and_are_checked(plugins, tiny_cnn, tmp_path):
    model = configs(plugins, "models", "onnx", {"path": str(tiny_cnn / "model.onnx"), "output_names": ["logits"]})
    _, exported, reference = _stages(plugins, model, _dataset(plugins, tiny_cnn), tmp_path)
    assert [s.name for s in exported.outputs] == ["logits"]
    check = exported.checks[0]
    assert check.passed and check.samples == 4 and check.max_abs_diff == 0.0
    assert reference.output_names == ("logits",)
    # the embedding's output is gone; the layers that feed the logits stay
    assert {o.name for o in onnx.load(str(exported.path)).graph.output} == {"logits"}


def test_onnx_shapes_make_axes_static_or_dynamic(plugins, tiny_cnn, tmp_path):
    static = configs(plugins, "models", "onnx", {"path": str(tiny_cnn / "model.onnx"),
                                                 "shapes": {"image": [1, None, None, None]}})
    _, exported, _ = _stages(plugins, static, _dataset(plugins, tiny_cnn), tmp_path / "static")
    assert exported.inputs[0].shape == (1, 1, 28, 28)
    assert exported.outputs[0].shape == (1, 10)  # shapes inferred again from the new input
    assert exported.checks[0].passed
    dynamic = configs(plugins, "models", "onnx", {"path": str(tiny_cnn / "model.onnx"),
                                                  "shapes": {"image": ["n", 1, "height", "width"]}})
    _, exported, _ = _stages(plugins, dynamic, _dataset(plugins, tiny_cnn), tmp_path / "dynamic")
    assert exported.inputs[0].shape == ("n", 1, "height", "width")


@pytest.mark.parametrize("options, message", [
    ({"output_names": ["logitz"]}, "no tensor named 'logitz'"),
    ({"shapes": {"img": [1, 1, 28, 28]}}, "no input 'img'"),
    ({"shapes": {"image": [1, 28, 28]}}, "has 4 axes; the list gives 3"),
    ({"shapes": {"image": [0, 1, 28, 28]}}, "positive size"),
])
def test_onnx_option_errors_name_the_field(plugins, tiny_cnn, tmp_path, options, message):
    model = configs(plugins, "models", "onnx", {"path": str(tiny_cnn / "model.onnx"), **options})
    with pytest.raises(InputError, match=message):
        _stages(plugins, model, _dataset(plugins, tiny_cnn), tmp_path)


def test_an_onnx_folder_must_hold_exactly_one_model(plugins, tiny_cnn, tmp_path):
    (tmp_path / "two").mkdir()
    for name in ("a.onnx", "b.onnx"):
        (tmp_path / "two" / name).write_bytes((tiny_cnn / "model.onnx").read_bytes())
    model = configs(plugins, "models", "onnx", {"path": str(tmp_path / "two")})
    with pytest.raises(InputError, match="exactly one .onnx in the folder, found 2"):
        _stages(plugins, model, _dataset(plugins, tiny_cnn), tmp_path / "run")


def test_torch_export_program(plugins, tiny_cnn, torch_forms, tmp_path):
    model = configs(plugins, "models", "torch_export", {"path": str(torch_forms["pt2"]),
                                                        "output_names": ["logits", "embedding"]})
    inputs, exported, reference = _stages(plugins, model, _dataset(plugins, tiny_cnn), tmp_path)
    assert exported.checks[0].passed and exported.checks[0].max_abs_diff < 1e-5
    assert exported.checks[0].label == "export vs torch_export"
    assert not isinstance(exported.inputs[0].shape[0], int)  # the program's dynamic batch stays dynamic
    image = inputs.load(2)["image"]
    expected = _torch_outputs(torch_forms["module"], image)
    np.testing.assert_allclose(reference.load(2)["logits"], expected[0], atol=1e-6)
    assert reference.details["framework"].startswith("torch 2.13")


def test_torch_export_names_default_to_the_programs(plugins, tiny_cnn, torch_forms, tmp_path):
    model = configs(plugins, "models", "torch_export", {"path": str(torch_forms["pt2"])})
    _, exported, reference = _stages(plugins, model, _dataset(plugins, tiny_cnn), tmp_path)
    assert [s.name for s in exported.inputs] == ["image"]
    assert reference.output_names == ("output_0", "output_1")


class _Marker:
    """Unpickling this writes a file: proof that code from the archive ran."""

    path = ""

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "ran"))


def _rewrite_member(src: Path, dst: Path, suffix: str, data: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            body = data if info.filename.endswith(suffix) else zin.read(info.filename)
            zout.writestr(info, body)


def test_torch_export_refuses_members_that_would_unpickle_code(plugins, tiny_cnn, torch_forms, tmp_path):
    marker = tmp_path / "marker.txt"
    _Marker.path = str(marker)
    payload = pickle.dumps(_Marker())
    bad_inputs = tmp_path / "bad_inputs.pt2"
    _rewrite_member(torch_forms["pt2"], bad_inputs, "sample_inputs/model.pt", payload)
    model = configs(plugins, "models", "torch_export", {"path": str(bad_inputs)})
    with pytest.raises(InputError, match="trust_code: true") as err:
        _stages(plugins, model, _dataset(plugins, tiny_cnn), tmp_path / "a")
    assert "sample inputs" in str(err.value) and not marker.exists()

    with zipfile.ZipFile(torch_forms["pt2"]) as z:
        name = next(n for n in z.namelist() if n.endswith("model_weights_config.json"))
        config = json.loads(z.read(name))
    first = next(iter(config["config"]))
    config["config"][first]["use_pickle"] = True
    bad_weights = tmp_path / "bad_weights.pt2"
    _rewrite_member(torch_forms["pt2"], bad_weights, "model_weights_config.json", json.dumps(config).encode())
    model = configs(plugins, "models", "torch_export", {"path": str(bad_weights)})
    with pytest.raises(InputError, match=f"would unpickle.*{first}"):
        _stages(plugins, model, _dataset(plugins, tiny_cnn), tmp_path / "b")


def test_torch_export_rejects_a_file_that_is_not_an_archive(plugins, tiny_cnn, tmp_path):
    bogus = tmp_path / "x.pt2"
    bogus.write_bytes(io.BytesIO(b"not a zip").getvalue())
    model = configs(plugins, "models", "torch_export", {"path": str(bogus)})
    with pytest.raises(InputError, match="not a torch.export archive"):
        _stages(plugins, model, _dataset(plugins, tiny_cnn), tmp_path / "a")


def test_torchscript_needs_trust_code_and_then_exports(plugins, tiny_cnn, torch_forms, tmp_path):
    untrusted = configs(plugins, "models", "torchscript", {"path": str(torch_forms["torchscript"])})
    with pytest.raises(InputError, match="trust_code: true"):
        _stages(plugins, untrusted, _dataset(plugins, tiny_cnn), tmp_path / "a")
    trusted = configs(plugins, "models", "torchscript", {"path": str(torch_forms["torchscript"]),
                                                         "trust_code": True, "output_names": ["logits", "emb"]})
    inputs, exported, reference = _stages(plugins, trusted, _dataset(plugins, tiny_cnn), tmp_path / "b")
    assert [s.name for s in exported.inputs] == ["image"]  # from the script's forward signature
    assert exported.checks[0].passed
    expected = _torch_outputs(torch_forms["module"], inputs.load(0)["image"])
    np.testing.assert_allclose(reference.load(0)["emb"], expected[1], atol=1e-6)


def test_torchscript_random_inputs_come_from_its_shapes_option(plugins, torch_forms, tmp_path):
    model = configs(plugins, "models", "torchscript", {"path": str(torch_forms["torchscript"]), "trust_code": True,
                                                       "shapes": {"image": ["batch", 1, 28, 28]}})
    dataset = configs(plugins, "datasets", "tensors", {"random_samples": 2})
    inputs, exported, _ = _stages(plugins, model, dataset, tmp_path)
    assert inputs.details["random_inputs"] and inputs.load(1)["image"].shape == (1, 1, 28, 28)
    assert exported.inputs[0].shape[0] == "batch"

"""Dataset ``tensors``: each input form, reference outputs, random inputs, and clear errors for bad files."""
from __future__ import annotations

import numpy as np
import pytest
from generic_files import write_npz_folder

from porter.artifacts import TensorSpec
from porter.builtin.generic.tensors import RANDOM_NOTE, build_input_set, dataset_references
from porter.errors import InputError

SPECS = (TensorSpec("image", ("batch", 1, 4, 4), "float32"), TensorSpec("ids", ("batch", "seq"), "int64"))


def _options(**kw):
    return {"inputs": None, "references": None, "limit": None, "random_samples": 8, "seed": 0, "dims": {}, **kw}


def _sample(seed, seq=3):
    rng = np.random.default_rng(seed)
    return {"image": rng.standard_normal((1, 4, 4)).astype(np.float32),  # no batch axis: porter adds it
            "ids": rng.integers(0, 9, (1, seq))}


def test_a_folder_is_one_sample_per_file_in_name_order(tmp_path):
    folder = write_npz_folder(tmp_path / "in", [_sample(i, seq=2 + i) for i in range(3)])
    inputs = build_input_set(_options(inputs=folder), SPECS, model="onnx", workdir=tmp_path / "w")
    assert inputs.sample_ids == ("s00", "s01", "s02") and inputs.input_names == ("image", "ids")
    first = inputs.load(0)
    assert first["image"].shape == (1, 1, 4, 4) and first["ids"].shape == (1, 2)
    assert inputs.load(2)["ids"].shape == (1, 4)  # dynamic axes may differ between samples
    np.testing.assert_array_equal(first["image"][0], _sample(0)["image"])
    assert not inputs.details.get("random_inputs")
    assert dataset_references(inputs) is None


def test_one_batch_file_is_split_into_its_rows(tmp_path):
    batch = tmp_path / "batch.npz"
    np.savez(batch, image=np.arange(3 * 16, dtype=np.float32).reshape(3, 1, 4, 4),
             ids=np.arange(6).reshape(3, 2))
    inputs = build_input_set(_options(inputs=batch, limit=2), SPECS, model="onnx", workdir=tmp_path / "w")
    assert inputs.sample_ids == ("batch[0]", "batch[1]")
    assert inputs.load(1)["image"].shape == (1, 1, 4, 4)
    assert inputs.load(1)["image"][0, 0, 0, 0] == 16.0
    np.testing.assert_array_equal(inputs.load(1)["ids"], [[2, 3]])


def test_reference_outputs_in_either_layout(tmp_path):
    folder = write_npz_folder(tmp_path / "in", [_sample(i) for i in range(2)])
    refs = write_npz_folder(tmp_path / "refs", [{"y": np.full((1, 3), i, np.float32)} for i in range(2)])
    inputs = build_input_set(_options(inputs=folder, references=refs), SPECS, model="onnx", workdir=tmp_path / "a")
    loaded = dataset_references(inputs)
    assert loaded.output_names == ("y",) and loaded.load(1)["y"][0, 0] == 1.0
    batch = tmp_path / "refs.npz"
    np.savez(batch, y=np.arange(6, dtype=np.float32).reshape(2, 3))
    inputs = build_input_set(_options(inputs=folder, references=batch), SPECS, model="onnx",
                             workdir=tmp_path / "b")
    np.testing.assert_array_equal(dataset_references(inputs).load(1)["y"], [[3.0, 4.0, 5.0]])


def test_a_missing_reference_file_is_named(tmp_path):
    folder = write_npz_folder(tmp_path / "in", [_sample(i) for i in range(2)])
    refs = tmp_path / "refs"
    refs.mkdir()
    np.savez(refs / "s00.npz", y=np.zeros(3))
    with pytest.raises(InputError, match="no reference file for input sample.*s01"):
        build_input_set(_options(inputs=folder, references=refs), SPECS, model="onnx", workdir=tmp_path / "w")


def test_random_inputs_follow_the_specs_and_say_so(tmp_path):
    inputs = build_input_set(_options(random_samples=3, dims={"seq": 5}), SPECS, model="onnx",
                             workdir=tmp_path / "w")
    assert len(inputs) == 3 and inputs.details["random_inputs"] and inputs.details["note"] == RANDOM_NOTE
    sample = inputs.load(0)
    assert sample["image"].shape == (1, 1, 4, 4) and sample["image"].dtype == np.float32
    assert sample["ids"].shape == (1, 5) and sample["ids"].dtype == np.int64
    again = build_input_set(_options(random_samples=3, dims={"seq": 5}), SPECS, model="onnx",
                            workdir=tmp_path / "w2")
    np.testing.assert_array_equal(again.load(2)["image"], inputs.load(2)["image"])  # seeded


def test_a_dynamic_axis_without_a_size_asks_for_one(tmp_path):
    with pytest.raises(InputError, match=r"dims: \{seq: N\}"):
        build_input_set(_options(), SPECS, model="onnx", workdir=tmp_path / "w")
    with pytest.raises(InputError, match="declares no input shapes"):
        build_input_set(_options(), None, model="torchscript", workdir=tmp_path / "w")


@pytest.mark.parametrize("arrays, message", [
    ({"image": np.zeros((1, 4, 4), np.float32)}, "lacks array\\(s\\) 'ids'"),
    ({"image": np.zeros((1, 1, 5, 4), np.float32), "ids": np.zeros((1, 2), np.int64)}, "axis 2 is 5.*static"),
    ({"image": np.zeros((2, 1, 4, 4), np.float32), "ids": np.zeros((2, 2), np.int64)}, "batch of 2"),
    ({"image": np.zeros((4, 4), np.float32), "ids": np.zeros((1, 2), np.int64)}, "has shape \\(4, 4\\)"),
    ({"image": np.zeros((1, 4, 4), np.float32), "ids": np.zeros((1, 2), np.float32)}, "integer inputs"),
])
def test_bad_sample_files_are_named_with_what_was_expected(tmp_path, arrays, message):
    folder = write_npz_folder(tmp_path / "in", [arrays])
    with pytest.raises(InputError, match=message) as err:
        build_input_set(_options(inputs=folder), SPECS, model="onnx", workdir=tmp_path / "w")
    assert "s00.npz" in str(err.value)


def test_files_that_are_not_plain_npz_are_refused(tmp_path):
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "x.npy", np.zeros(3))
    with pytest.raises(InputError, match="holds no .npz"):
        build_input_set(_options(inputs=tmp_path / "in"), SPECS, model="onnx", workdir=tmp_path / "w")
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, image=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="without unpickling"):
        build_input_set(_options(inputs=pickled), SPECS, model="onnx", workdir=tmp_path / "w")
    ragged = tmp_path / "ragged.npz"
    np.savez(ragged, image=np.zeros((2, 1, 4, 4)), ids=np.zeros((3, 2)))
    with pytest.raises(InputError, match="share their leading"):
        build_input_set(_options(inputs=ragged), SPECS, model="onnx", workdir=tmp_path / "w")

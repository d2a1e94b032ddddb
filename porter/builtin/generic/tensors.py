"""Dataset ``tensors``: model inputs (and optionally reference outputs) from ``.npz`` files, or random inputs.

Two layouts, for inputs and references alike:

* a folder of ``.npz`` files, one sample per file, its arrays named like the model's inputs (or outputs), with
  or without the leading batch axis of 1; samples are the files in name order, and a reference file is matched
  to its input file by name;
* one ``.npz`` holding a batch: every array has the same leading size N, and sample i is row i.

Without inputs, samples are drawn at random from the model's own input specs: fine for speed figures, not for
accuracy, and the InputSet says so: a note the report shows with every variant, and ``details["random_inputs"]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from porter.api import InputError, InputSet, OutputSet, TensorSpec, Timing, write_sample

REFERENCE_DIR = "references"
RANDOM_NOTE = "random inputs drawn from the model's input specs: speed figures hold, accuracy figures do not"


@dataclass(frozen=True)
class Sample:
    id: str
    arrays: Mapping[str, np.ndarray]
    source: str  # the file (and row) it came from, for error messages


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except ValueError as exc:  # object arrays need pickle: data, never code
        raise InputError(f"cannot read the arrays without unpickling ({exc}); expected plain numeric arrays",
                         file=path) from None
    except (OSError, EOFError) as exc:
        raise InputError(f"not a readable .npz file ({exc})", file=path) from None


def read_samples(path: Path, *, what: str, field: str) -> list[Sample]:
    """The samples under ``path``: a folder of one-sample ``.npz`` files, or one batch ``.npz``."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.npz"))
        if not files:
            raise InputError(f"the folder holds no .npz files; expected one .npz of {what} per sample", file=path,
                             field=field)
        return [Sample(f.stem, _load_npz(f), str(f)) for f in files]
    if path.suffix != ".npz":
        raise InputError(f"expected a folder of .npz files or one .npz holding a batch of {what}", file=path,
                         field=field)
    arrays = _load_npz(path)
    if not arrays:
        raise InputError(f"the file holds no arrays; expected {what}", file=path, field=field)
    sizes = {name: (a.shape[0] if a.ndim else None) for name, a in arrays.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        listing = ", ".join(f"{n} {tuple(a.shape)}" for n, a in arrays.items())
        raise InputError(f"a batch file's arrays must share their leading (batch) size; got {listing}", file=path,
                         field=field)
    count = int(next(iter(sizes.values())) or 0)
    return [Sample(f"{path.stem}[{i}]", {n: a[i:i + 1] for n, a in arrays.items()}, f"{path} row {i}")
            for i in range(count)]


def conform(sample: Sample, specs: Sequence[TensorSpec] | None, *, field: str,
            batch_file: bool) -> dict[str, np.ndarray]:
    """The sample's arrays the model takes, each with its leading batch axis of 1, checked against ``specs``."""
    if specs is None:  # nothing to check against: take the arrays as they are
        return {n: (a if batch_file else np.asarray(a)) for n, a in sample.arrays.items()}
    missing = [s.name for s in specs if s.name not in sample.arrays]
    if missing:
        raise InputError(f"{sample.source} lacks array(s) {', '.join(map(repr, missing))}; it has "
                         f"{', '.join(map(repr, sample.arrays)) or 'none'} and the model's inputs are "
                         f"{', '.join(repr(s.name) for s in specs)}", field=field)
    out = {}
    for spec in specs:
        array = np.asarray(sample.arrays[spec.name])
        rank = len(spec.shape)
        if array.ndim == rank - 1 and not batch_file:
            array = array[None]
        if array.ndim != rank:
            raise InputError(f"{sample.source}: array {spec.name!r} has shape {tuple(array.shape)}; the model "
                             f"expects {rank} axes {spec.shape} (the leading batch axis may be left out)",
                             field=field)
        if array.shape[0] != 1:
            raise InputError(f"{sample.source}: array {spec.name!r} has a batch of {array.shape[0]}; a file holds "
                             "one sample (give a batch as one .npz whose rows are the samples)", field=field)
        for axis, (have, want) in enumerate(zip(array.shape[1:], spec.shape[1:]), start=1):
            # a generic model's static axis is never padded: zeros are not neutral for an unknown model
            if isinstance(want, int) and want > 0 and have != want:
                raise InputError(f"{sample.source}: array {spec.name!r} axis {axis} is {have}; the model's input "
                                 f"is static there ({spec.shape}); make that axis dynamic with the model's "
                                 "shapes option, or give arrays of that size", field=field)
        try:
            kind = np.dtype(spec.dtype).kind
        except TypeError:  # an ONNX element type numpy has no name for
            kind = None
        if kind in ("i", "u", "b") and array.dtype.kind == "f":
            raise InputError(f"{sample.source}: array {spec.name!r} is {array.dtype}; the model's input is "
                             f"{spec.dtype} (give integer arrays for integer inputs)", field=field)
        out[spec.name] = array
    return out


def random_samples(specs: Sequence[TensorSpec] | None, *, count: int, seed: int,
                   dims: Mapping[str, int], model: str) -> list[dict[str, np.ndarray]]:
    """``count`` samples drawn from ``specs``: a dynamic axis takes its size from ``dims`` by name (axis 0 is
    the batch, 1)."""
    if not specs:
        raise InputError(f"model {model!r} declares no input shapes to draw random inputs from; give "
                         "dataset.options.inputs (a folder of .npz) or the model's shapes option",
                         field="dataset.options.inputs")
    shapes = {}
    for spec in specs:
        shape = []
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim if axis else 1)
            elif axis == 0:
                shape.append(1)
            elif isinstance(dim, str) and dim in dims:
                shape.append(int(dims[dim]))
            else:
                raise InputError(f"input {spec.name!r} axis {axis} is dynamic ({dim!r}); say how long random "
                                 f"inputs should be there with dataset.options.dims: {{{dim}: N}}",
                                 field="dataset.options.dims")
        shapes[spec.name] = tuple(shape)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        arrays = {}
        for spec in specs:
            dtype = np.dtype(spec.dtype)
            if dtype.kind == "f":
                arrays[spec.name] = rng.standard_normal(shapes[spec.name]).astype(dtype)
            elif dtype.kind == "b":
                arrays[spec.name] = rng.integers(0, 2, shapes[spec.name]).astype(bool)
            else:  # indices and ids: small non-negative values, valid for most embeddings and gathers
                arrays[spec.name] = rng.integers(0, 2, shapes[spec.name]).astype(dtype)
        samples.append(arrays)
    return samples


def build_input_set(options: Mapping, specs: Sequence[TensorSpec] | None, *, model: str,
                    workdir: Path) -> InputSet:
    """Write the dataset's samples (and reference outputs) under ``workdir`` and describe them."""
    workdir = Path(workdir)
    limit = options.get("limit")
    details: dict = {}
    if options.get("inputs") is not None:
        source = Path(options["inputs"])
        samples = read_samples(source, what="model inputs", field="dataset.options.inputs")[:limit]
        ids = [s.id for s in samples]
        arrays = [conform(s, specs, field="dataset.options.inputs", batch_file=not source.is_dir())
                  for s in samples]
    else:
        if options.get("references") is not None:
            raise InputError("reference outputs were given without the inputs they belong to; give "
                             "dataset.options.inputs as well", field="dataset.options.references")
        count = options["random_samples"] if limit is None else min(limit, options["random_samples"])
        arrays = random_samples(specs, count=count, seed=options["seed"], dims=options.get("dims") or {},
                                model=model)
        ids = [f"random-{i:04d}" for i in range(len(arrays))]
        details.update(random_inputs=True, note=RANDOM_NOTE)
    for index, sample in enumerate(arrays):
        write_sample(workdir, index, sample)
    names = tuple(specs_names(specs, arrays))
    if options.get("references") is not None:
        _write_references(Path(options["references"]), ids, workdir)
        details["reference_outputs"] = REFERENCE_DIR
    notes = (RANDOM_NOTE,) if details.get("random_inputs") else ()
    return InputSet(workdir, tuple(ids), names, references=(), details=details, notes=notes)


def specs_names(specs, arrays) -> list[str]:
    if specs is not None:
        return [s.name for s in specs]
    return list(arrays[0]) if arrays else []


def _write_references(path: Path, ids: Sequence[str], workdir: Path) -> None:
    field = "dataset.options.references"
    refs = read_samples(path, what="reference outputs", field=field)
    if path.is_dir():
        by_id = {r.id: r for r in refs}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise InputError(f"no reference file for input sample(s) {', '.join(missing[:5])}"
                             f"{' ...' if len(missing) > 5 else ''}; expected one <name>.npz per input file",
                             file=path, field=field)
        ordered = [by_id[i] for i in ids]
    else:
        if len(refs) < len(ids):
            raise InputError(f"the batch holds {len(refs)} reference rows for {len(ids)} input samples", file=path,
                             field=field)
        ordered = refs[:len(ids)]
    for index, ref in enumerate(ordered):
        # kept as given: the score stage adds a missing batch axis once it sees the output's shape
        write_sample(workdir / REFERENCE_DIR, index, ref.arrays)


def dataset_references(inputs: InputSet) -> OutputSet | None:
    """The dataset's own reference outputs as an OutputSet (no timing), or None when it has none."""
    folder = inputs.details.get("reference_outputs")
    if not folder:
        return None
    refs = OutputSet(Path(inputs.path) / folder, tuple(inputs.sample_ids), (), Timing((), 0.0))
    names = tuple(refs.load(0)) if len(refs) else ()
    return OutputSet(refs.path, refs.sample_ids, names, refs.timing, details={"source": "dataset references"})

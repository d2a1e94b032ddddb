"""porter's DeepSpeech2 plugin (deepspeech.pytorch V3): model, AN4-style datasets, WER/CER scoring.

Importing the package sets up the environment its stages need, before anything of it imports torch: torch's
legacy ONNX exporter prints two "shape inference of prim::PackPadded type is missing" lines per LSTM on every
export straight from C++, past Python's warnings filters, and the exported graphs are checked against PyTorch
anyway, so they are noise that buries the variants table. torch reads the level once, when it is first imported,
and porter's core imports torch only lazily, so setting it here (when the plugin loads) is in time.
``TORCH_CPP_LOG_LEVEL=WARNING`` brings the lines back; Dask workers load the plugin and set it themselves.
"""
import os

os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")

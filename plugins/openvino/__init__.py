"""porter's OpenVINO target: compiles ONNX for the CPU with OpenVINO (f32, bf16, f16, int8 through NNCF) and
runs it at batch 1 or in bucketed batches. Modules: flags (the recipe's flags → OpenVINO properties),
capabilities (what this CPU and OpenVINO offer), quantize (NNCF int8), compile (IR + property set + compiled
blob), runner (inference), plugin (the hooks)."""

# 2: the compiled model carries the bf16/f16 fallback as a report note (CompiledModel.notes)
PLUGIN_VERSION = "2"

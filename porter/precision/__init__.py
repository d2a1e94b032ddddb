"""Where reduced precision breaks a model, and what to keep in fp32 to fix it.

``provenance``: what a rewritten graph's tensors correspond to in the graph before the rewrite.
``probe``: every intermediate tensor of an ONNX graph exposed as an output and captured on real inputs.
``divergence``: the reference graph against a variant's, layer by layer (``porter debug``).
``search``: the smallest keep-list that brings a variant within a budget (``porter precision-search``).
``emit``: a keep-list in each target's own language (atc keep_dtype / modify_mixlist, NNCF ignored_scope, ...).
"""

"""porter's generic model plugin: any ONNX file, ``torch.export`` program or TorchScript file, with a folder of
``.npz`` tensors, scored by output agreement with the framework reference.

It imports only from :mod:`porter.api`, exactly as a third-party plugin would, so it doubles as the example of
one. ``plugin`` holds the hooks; the modules next to it hold the work they dispatch to.
"""

"""Inference backends and ONNX export. The runtime backends are torch-free; torch is imported
only by ``export`` (lazily) and by ``torch_backend``, which runs a .pt checkpoint on request."""

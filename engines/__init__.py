"""Inference backends (torch-free) and ONNX export (the one module that imports torch, lazily)."""

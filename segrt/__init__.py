"""segrt: real-time semantic segmentation for video.

Subpackages (each a top-level folder of the repository, mapped by setup.py):
``segrt.realtime`` (capture loop, overlay, timing), ``segrt.engines`` (ONNX Runtime and
TensorRT backends, export), ``segrt.train`` (models, data, training) and
``segrt.calibration`` (INT8 calibration frames). Nothing is imported here, so
``import segrt`` stays cheap and torch-free.
"""

__version__ = "0.1.0"

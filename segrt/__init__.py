"""segrt: real-time semantic segmentation for video.

Subpackages (each a top-level folder of the repository, mapped by setup.py):
``segrt.realtime`` (capture loop, overlay, timing), ``segrt.engines`` (ONNX Runtime and
TensorRT backends, export), ``segrt.train`` (models, data, training) and
``segrt.calibration`` (INT8 calibration frames). Nothing is imported here, so
``import segrt`` stays cheap and torch-free.
"""

__version__ = "0.1.0"

# FFmpeg (inside OpenCV) prints decoder complaints about damaged files straight to stderr;
# segrt reports such files itself, in one line. Set OPENCV_FFMPEG_LOGLEVEL to see them.
import os as _os

_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def __getattr__(name: str):  # segrt.Segmenter without importing OpenCV at `import segrt`
    if name == "Segmenter":
        from segrt.api import Segmenter

        return Segmenter
    raise AttributeError(f"module 'segrt' has no attribute {name!r}")

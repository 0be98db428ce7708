"""segrt: real-time semantic segmentation for video.

This folder is the core (errors, files, config, preprocessing, datasets, metrics); the other
top-level folders of the repository are its subpackages, one per layer, mapped by setup.py:
``segrt.train``, ``segrt.engines``, ``segrt.realtime`` (with the Python API),
``segrt.calibration``, ``segrt.evaluation`` and ``segrt.app`` (the CLI). Nothing is imported
here, so ``import segrt`` stays cheap and torch-free.
"""

__version__ = "0.1.0"

# FFmpeg (inside OpenCV) prints decoder complaints about damaged files straight to stderr;
# segrt reports such files itself, in one line. Set OPENCV_FFMPEG_LOGLEVEL to see them.
import os as _os

_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def __getattr__(name: str):  # segrt.Segmenter without importing OpenCV at `import segrt`
    if name == "Segmenter":
        from segrt.realtime.api import Segmenter

        return Segmenter
    raise AttributeError(f"module 'segrt' has no attribute {name!r}")

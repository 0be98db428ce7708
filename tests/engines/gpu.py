"""What the TensorRT tests share: skip (saying why) where TensorRT or a GPU is missing, and a
copy of the shipped default model to build from."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def default_model_copy(folder: Path) -> Path:
    """The shipped GPU default as ``folder/m.onnx`` with its manifest ``m.json``, once TensorRT and
    a usable GPU are known to be there (the test skips otherwise)."""
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (it needs an NVIDIA GPU machine)")
    from segrt.engines.cuda_memory import GpuUnavailable, gpu_info
    from segrt.engines.zoo import GPU_DEFAULT

    try:
        gpu_info()
    except GpuUnavailable as exc:
        pytest.skip(f"no usable GPU: {exc}")
    for suffix in (".onnx", ".json"):
        shutil.copyfile(REPO / "segrt" / "zoo" / GPU_DEFAULT.replace(".onnx", suffix), folder / f"m{suffix}")
    return folder / "m.onnx"

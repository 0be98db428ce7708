"""``--device tensorrt`` on an ONNX file: the engine cache's naming and reuse rules (no TensorRT
needed), and the one-line refusal on a machine without TensorRT or a GPU."""

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from segrt.engines.engine_cache import cached_engine_path, engine_cache_dir, why_not_reusable
from segrt.engines.manifest import load_manifest
from segrt.engines.zoo import GPU_DEFAULT as DEFAULT_MODEL
from segrt.files import sha256_file

from .gpu import default_model_copy

REPO = Path(__file__).resolve().parents[2]
ONNX = REPO / "segrt" / "zoo" / DEFAULT_MODEL
H200 = {"name": "NVIDIA H200", "compute_capability": "9.0"}
ORIN = {"name": "Orin", "compute_capability": "8.7"}


def cached_engine(path: Path, onnx_sha: str, trt: str = "11.0.0", gpu: dict = H200) -> Path:
    """Bytes standing in for an engine, with the manifest ``build_engine`` would write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"serialized engine " * 64)
    m = dataclasses.replace(load_manifest(ONNX), model_sha256=sha256_file(path), engine={
        "tensorrt_version": trt, "gpu": gpu["name"], "compute_capability": gpu["compute_capability"],
        "onnx": str(ONNX), "onnx_sha256": onnx_sha})
    m.save(path)
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGRT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_one_cache_file_per_onnx_tensorrt_and_gpu(cache):
    a = cached_engine_path(ONNX, "ab" * 32, H200, "11.0.0")
    assert a.parent == engine_cache_dir() == cache / "tensorrt" / "engines"
    assert a.name == f"{ONNX.stem}-{'ab' * 8}-nvidia-h200-sm90-trt11.0.0.engine"
    others = {cached_engine_path(ONNX, "cd" * 32, H200, "11.0.0"), cached_engine_path(ONNX, "ab" * 32, ORIN, "11.0.0"),
              cached_engine_path(ONNX, "ab" * 32, H200, "10.3.0")}
    assert a not in others and len(others) == 3


def test_a_matching_engine_is_reused_and_every_mismatch_says_why(cache):
    onnx_sha = sha256_file(ONNX)
    path = cached_engine_path(ONNX, onnx_sha, H200, "11.0.0")
    assert why_not_reusable(path, onnx_sha, "11.0.0", H200) == "no engine cached yet"
    cached_engine(path, onnx_sha)
    assert why_not_reusable(path, onnx_sha, "11.0.0", H200) is None
    assert "this machine has 11.1.0" in why_not_reusable(path, onnx_sha, "11.1.0", H200)
    assert "this machine has Orin" in why_not_reusable(path, onnx_sha, "11.0.0", ORIN)
    assert why_not_reusable(path, "0" * 64, "11.0.0", H200) == "the cached engine was built from another ONNX file"
    path.write_bytes(path.read_bytes()[:100])  # a build cut short by a crash, a disk error
    assert "damaged" in why_not_reusable(path, onnx_sha, "11.0.0", H200)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_without_tensorrt_device_tensorrt_is_one_line_that_names_the_fix(tmp_path, short_clip):
    proc = subprocess.run([sys.executable, "-m", "segrt", "run", str(short_clip), "--device", "tensorrt",
                           "--max-frames", "2", "-o", str(tmp_path / "o.mp4")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "--device tensorrt needs TensorRT and an NVIDIA GPU" in proc.stderr and "--device cpu" in proc.stderr
    assert not (tmp_path / "o.mp4").exists()
    from segrt.errors import ModelError
    from segrt.realtime.api import Segmenter

    with pytest.raises(ModelError, match="needs TensorRT"):
        Segmenter("fcn8s_camvid", device="tensorrt")


@pytest.mark.tensorrt
def test_first_use_builds_the_engine_into_the_cache_then_reuses_it(cache, tmp_path):
    from segrt.engines.engine_cache import engine_for

    default_model_copy(tmp_path)
    said: list[str] = []
    first = engine_for(tmp_path / "m.onnx", echo=said.append)
    assert first.is_file() and any("building a TensorRT engine" in s for s in said)
    said.clear()
    assert engine_for(tmp_path / "m.onnx", echo=said.append) == first
    assert said == [f"using the cached TensorRT engine {first}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "m.json", "m.onnx"]  # nothing beside the ONNX

"""TensorRT code without TensorRT: type-checked against the vendored stubs, scanned for APIs
TensorRT 11 removed, and refusing cleanly where there is no GPU. Building and running engines
needs TensorRT and an NVIDIA GPU: those tests are marked ``tensorrt`` and skip with the reason."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from segrt.engines.zoo import GPU_DEFAULT as DEFAULT_MODEL

from .gpu import default_model_copy

REPO = Path(__file__).resolve().parents[2]
# TensorRT 11.x migration guide, "Removed Python APIs and Replacements", plus the bindings API
# that TensorRT 10 already removed (the code must run on both).
REMOVED = {
    "FP16", "INT8", "FP8", "BF16", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
    "DIRECT_IO", "int8_calibrator", "set_calibration_profile", "get_calibration_profile", "set_quantization_flag",
    "get_quantization_flag", "clear_quantization_flag", "quantization_flags", "device_memory_size",
    "IInt8Calibrator", "IInt8EntropyCalibrator", "IInt8EntropyCalibrator2", "IInt8LegacyCalibrator",
    "IInt8MinMaxCalibrator", "CalibrationAlgoType", "IAlgorithmSelector", "algorithm_selector",
    "platform_has_fast_fp16", "platform_has_fast_int8",
    "get_binding_shape", "get_binding_index", "get_binding_name", "binding_is_input", "num_bindings",
    "execute_v2", "execute_async_v2", "execute_async", "max_workspace_size", "build_engine", "build_cuda_engine",
}
TENSORRT_CODE = [REPO / "engines" / f for f in ("tensorrt_build.py", "tensorrt_backend.py", "cuda_memory.py",
                                              "engine_cache.py")]


def removed_api_uses(source: str) -> list[str]:
    """Attribute accesses (``trt.BuilderFlag.FP16``) and imported names from the removed list,
    as 'line: name', in line order. segrt's own names (``build_engine``) are not TensorRT's."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        names = [node.attr] if isinstance(node, ast.Attribute) else \
            [a.name for a in node.names] if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "tensorrt") else []
        hits += [(node.lineno, n) for n in names if n in REMOVED]
    return [f"{line}: {name}" for line, name in sorted(hits)]


@pytest.mark.parametrize("path", TENSORRT_CODE, ids=lambda p: p.name)
def test_tensorrt_code_uses_no_api_tensorrt_11_removed(path):
    assert removed_api_uses(path.read_text()) == []


def test_removed_api_scan_catches_weak_typing_and_the_calibrator():
    old = ("config.set_flag(trt.BuilderFlag.FP16)\nconfig.int8_calibrator = c\n"
           "class C(trt.IInt8EntropyCalibrator2): pass\nctx.execute_v2(bindings)\n"
           "from tensorrt import IInt8MinMaxCalibrator\n")
    assert [h.split(": ")[1] for h in removed_api_uses(old)] == [
        "FP16", "int8_calibrator", "IInt8EntropyCalibrator2", "execute_v2", "IInt8MinMaxCalibrator"]


needs_mypy = pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy not installed (dev extra)")


def mypy(*args):
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", *args], cwd=REPO,
                          capture_output=True, text=True)


@needs_mypy
def test_tensorrt_code_type_checks_against_the_vendored_stubs():
    proc = mypy()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues found in 4 source files" in proc.stdout


@needs_mypy
def test_stubs_reject_what_tensorrt_11_removed_and_accept_what_it_kept(tmp_path):
    bad = tmp_path / "old_api.py"
    bad.write_text("import tensorrt as trt\n"
                   "def build(config: trt.IBuilderConfig) -> None:\n"
                   "    config.set_flag(trt.BuilderFlag.FP16)\n"
                   "    config.int8_calibrator = None\n")
    good = tmp_path / "new_api.py"
    good.write_text("import tensorrt as trt\n"
                    "def run(ctx: trt.IExecutionContext, stream: int) -> bool:\n"
                    "    ctx.set_tensor_address('image', 0)\n"
                    "    return ctx.execute_async_v3(stream)\n")
    proc = mypy("--config-file", str(REPO / "mypy.ini"), str(bad))
    assert proc.returncode == 1
    assert '"type[BuilderFlag]" has no attribute "FP16"' in proc.stdout
    assert '"IBuilderConfig" has no attribute "int8_calibrator"' in proc.stdout
    proc = mypy("--config-file", str(REPO / "mypy.ini"), str(good))
    assert proc.returncode == 0, proc.stdout


def test_stubs_are_not_importable_as_a_package():
    """Installed stubs make ``import tensorrt`` succeed as an empty package; vendored .pyi
    files under stubs/ must never shadow the real (absent) TensorRT."""
    spec = importlib.util.find_spec("tensorrt")
    assert spec is None or "stubs" not in str(spec.origin)
    assert [p.name for p in (REPO / "stubs").rglob("*.py")] == ["patch_stubs.py"]


def test_without_a_gpu_engines_are_refused_before_any_tensorrt_object(tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here: the no-GPU path is not what runs")
    from segrt.engines.cuda_memory import GpuUnavailable, gpu_info
    from segrt.errors import SegrtError

    with pytest.raises(GpuUnavailable):
        gpu_info()
    proc = subprocess.run([sys.executable, "-m", "segrt", "build", str(REPO / "segrt" / "zoo" / DEFAULT_MODEL),
                           "-o", str(tmp_path / "m.engine")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and ("GPU" in proc.stderr or "cuda" in proc.stderr.lower())
    assert not (tmp_path / "m.engine").exists()
    assert issubclass(GpuUnavailable, SegrtError)


@pytest.mark.tensorrt
def test_build_and_run_an_engine_matches_onnx_runtime(tmp_path):
    import numpy as np

    from segrt.engines.base import open_backend
    from segrt.engines.manifest import load_manifest
    from segrt.engines.tensorrt_build import build_engine

    onnx = default_model_copy(tmp_path)
    build_engine(onnx, tmp_path / "m.engine", timing_cache=tmp_path / "t.cache")
    shape = load_manifest(onnx).preprocess.input_shape(1)  # the model's own size (704x384 for the GPU default)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with open_backend(tmp_path / "m.engine") as trt_net, open_backend(tmp_path / "m.onnx") as ort_net:
        assert (trt_net.infer(x) == ort_net.infer(x)).mean() > 0.99


def test_gpu_check_script_skips_cleanly_without_a_gpu(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import json

    doc = json.loads(out.read_text())
    assert set(doc["checks"]) == {"cuda_buffers", "torch_cuda", "onnxruntime_cuda", "tensorrt"}
    if doc["gpu"]["name"] is None:
        assert all(c["status"] == "skipped" and c["why"] for c in doc["checks"].values())
    assert doc["versions"]["onnxruntime"]


def engine_manifest(tmp_path, **engine):
    import dataclasses

    from segrt.engines.manifest import load_manifest

    base = load_manifest(REPO / "segrt" / "zoo" / DEFAULT_MODEL)
    return dataclasses.replace(base, engine={"tensorrt_version": "10.3.0", "gpu": "Orin",
                                             "compute_capability": "8.7", **engine})


def test_engine_bound_to_its_tensorrt_and_gpu(tmp_path):
    from segrt.engines.tensorrt_build import check_engine_matches

    m = engine_manifest(tmp_path)
    orin = {"name": "Orin", "compute_capability": "8.7"}
    assert check_engine_matches(m, tmp_path / "m.engine", "10.3.0", orin) is None
    assert "built with TensorRT 10.3.0, this machine has 11.4.0" in check_engine_matches(
        m, tmp_path / "m.engine", "11.4.0", orin)
    assert "built for Orin (compute 8.7), this machine has NVIDIA H100" in check_engine_matches(
        m, tmp_path / "m.engine", "10.3.0", {"name": "NVIDIA H100", "compute_capability": "9.0"})


def test_rebuild_finds_the_recorded_onnx_and_refuses_a_changed_one(tmp_path):
    import shutil

    from segrt.engines.tensorrt_build import recorded_onnx
    from segrt.errors import ModelError
    from segrt.files import sha256_file

    onnx = tmp_path / "m.onnx"
    shutil.copyfile(REPO / "segrt" / "zoo" / DEFAULT_MODEL, onnx)
    (tmp_path / "engines").mkdir()
    engine = tmp_path / "engines" / "m.engine"
    m = engine_manifest(tmp_path, onnx="../m.onnx", onnx_sha256=sha256_file(onnx))
    assert recorded_onnx(m, engine) == onnx.resolve()
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="changed since m.engine was built"):
        recorded_onnx(m, engine)
    onnx.unlink()
    with pytest.raises(ModelError, match="is gone"):
        recorded_onnx(m, engine)


def test_trtexec_line_and_manifest_beside_the_engine(tmp_path):
    from segrt.engines.manifest import manifest_path
    from segrt.engines.tensorrt_build import trtexec_command

    fixed = trtexec_command(Path("m.onnx"), Path("m.engine"), 2048, Path("t.cache"), {})
    assert fixed == ("trtexec --onnx=m.onnx --saveEngine=m.engine --stronglyTyped --memPoolSize=workspace:2048M "
                     "--timingCacheFile=t.cache")
    dyn = trtexec_command(Path("m.onnx"), Path("m.engine"), 1024, None,
                          {"image": ((1, 3, 288, 384), (1, 3, 288, 384), (8, 3, 288, 384))})
    assert "--minShapes=image:1x3x288x384 --optShapes=image:1x3x288x384 --maxShapes=image:8x3x288x384" in dyn
    # an engine and the ONNX it came from share a stem, never a manifest
    assert manifest_path("m.engine").name == "m.engine.json" and manifest_path("m.onnx").name == "m.json"

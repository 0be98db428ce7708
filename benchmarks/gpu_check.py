"""GPU check: every GPU code path segrt has, on real data, with what is absent skipped cleanly.

    python3 benchmarks/gpu_check.py [--out benchmarks/results/gpu_check_<gpu>.json]

1. CUDA buffers (cuda-python, then pycuda): pinned host → device → host round trips of real
   frames, byte for byte.
2. PyTorch CUDA backend on the base FPN's checkpoint (segrt/zoo/fpn_lite0_camvid.pt): FP32, FP16
   autocast and CUDA graphs, label agreement with the same checkpoint on the CPU, and latency.
3. ONNX Runtime CUDA provider (onnxruntime-gpu) on the GPU default: agreement with CPU, latency.
4. TensorRT (when importable): build the GPU default, run it, agreement with ONNX Runtime CPU.

Each check records ok / skipped (with why) / failed (with the error); the JSON records the
machine, GPU and versions. Exit code 1 if any check failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from segrt.engines.zoo import BASE_FPN
from segrt.engines.zoo import GPU_DEFAULT as DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "segrt" / "zoo"
ONNX = ZOO / DEFAULT_MODEL
CKPT = (ZOO / BASE_FPN).with_suffix(".pt")  # the GPU default has no checkpoint: torch runs the base FPN's


def frames(n: int = 8) -> list[np.ndarray]:
    """Real frames from the dashcam clip when present, else seeded noise."""
    import cv2

    clip = REPO.parent / "shared" / "videos" / "highway_dashcam_960x540.mp4"
    out = []
    cap = cv2.VideoCapture(str(clip))
    while len(out) < n:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    rng = np.random.default_rng(0)
    return out or [rng.integers(0, 256, (540, 960, 3), np.uint8) for _ in range(n)]


def batches(manifest, images):
    from segrt.preprocess import Preprocessor

    prep = Preprocessor(manifest.preprocess)
    return [prep(f)[None] for f in images]


def latency_ms(fn, x, runs: int = 100) -> dict:
    for _ in range(10):
        fn(x)
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(x)
        t.append((time.perf_counter() - t0) * 1000)
    return {"mean_ms": round(float(np.mean(t)), 3), "p50_ms": round(float(np.median(t)), 3),
            "p99_ms": round(float(np.percentile(t, 99)), 3)}


def reference_labels(xs):
    from segrt.engines.base import open_backend

    with open_backend(ONNX, device="cpu") as net:
        return [net.infer(x).copy() for x in xs]


def check_cuda_buffers(images) -> dict:
    from segrt.engines.cuda_memory import CudaPython, PyCuda

    out = {}
    for name, cls in (("cuda-python", CudaPython), ("pycuda", PyCuda)):
        try:
            mem = cls()
        except ImportError as exc:
            out[name] = {"status": "skipped", "why": f"not installed ({exc})"}
            continue
        try:
            mismatched, nbytes, t0 = 0, 0, time.perf_counter()
            for f in images:
                host_in = mem.host(f.shape, np.uint8)
                host_out = mem.host(f.shape, np.uint8)
                np.copyto(host_in, f)
                dev = mem.device(f.nbytes)
                mem.h2d(dev, host_in)
                mem.d2h(host_out, dev)
                mem.synchronize()
                mismatched += int((host_out != f).sum())
                nbytes += 2 * f.nbytes
            seconds = time.perf_counter() - t0
            out[name] = {"status": "ok" if mismatched == 0 else "failed", "frames": len(images),
                         "bytes_mismatched": mismatched, "round_trip_gb_s": round(nbytes / seconds / 1e9, 2)}
        finally:
            mem.close()
    return out


def check_torch(images) -> dict:
    """The base FPN's checkpoint on the GPU against the same checkpoint on the CPU (the
    checkpoint's own input size, which its ONNX file's need not be)."""
    import torch

    from segrt.engines.base import open_backend

    if not torch.cuda.is_available():
        return {"status": "skipped", "why": "torch has no CUDA device"}
    with open_backend(CKPT, device="cpu") as net:
        xs = batches(net.manifest, images)
        ref = [net.infer(x).copy() for x in xs]
    out = {}
    variants = (("fp32", {}), ("fp16_autocast", {"half": True}),
                ("cuda_graph_fp16", {"half": True, "cuda_graph": True}))
    for label, opts in variants:
        with open_backend(CKPT, device="cuda", **opts) as net:
            got = [net.infer(x).copy() for x in xs]
            out[label] = {"status": "ok", "agreement_vs_torch_cpu": agreement(got, ref),
                          "latency": latency_ms(net.infer, xs[0])}
    return out


def agreement(a, b) -> float:
    return round(float(np.mean([np.mean(x == y) for x, y in zip(a, b, strict=True)])), 6)


def check_onnxruntime_cuda(xs, ref) -> dict:
    import onnxruntime as ort

    from segrt.engines.base import open_backend

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return {"status": "skipped", "why": f"onnxruntime {ort.__version__} has no CUDA provider (onnxruntime-gpu)"}
    with open_backend(ONNX, device="cuda") as net:
        got = [net.infer(x).copy() for x in xs]
        return {"status": "ok", "agreement_vs_cpu": agreement(got, ref), "latency": latency_ms(net.infer, xs[0])}


def check_tensorrt(xs, ref) -> dict:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return {"status": "skipped", "why": "TensorRT is not installed"}
    import shutil

    from segrt.engines.base import open_backend
    from segrt.engines.tensorrt_build import build_engine

    with tempfile.TemporaryDirectory() as d:
        for s in (".onnx", ".json"):
            shutil.copyfile(ONNX.with_suffix(s), Path(d) / f"m{s}")
        m = build_engine(Path(d) / "m.onnx", Path(d) / "m.engine", timing_cache=Path(d) / "t.cache", progress=False)
        with open_backend(Path(d) / "m.engine") as net:
            got = [net.infer(x).copy() for x in xs]
            return {"status": "ok", "tensorrt": m.engine["tensorrt_version"],
                    "build_seconds": m.engine["build_seconds"], "agreement_vs_onnxruntime_cpu": agreement(got, ref),
                    "latency": latency_ms(net.infer, xs[0])}


def main(argv: list[str] | None = None) -> int:
    from segrt import envinfo
    from segrt.engines.cuda_memory import GpuUnavailable, gpu_info
    from segrt.engines.manifest import load_manifest

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    try:
        gpu = gpu_info()
    except (GpuUnavailable, ImportError) as exc:
        gpu = {"name": None, "why": str(exc)}
    images = frames()
    xs = batches(load_manifest(ONNX), images)
    ref = reference_labels(xs)
    results = {"gpu": gpu, "machine": envinfo.machine(), "versions": envinfo.versions(),
               "command": " ".join([Path(sys.executable).name, *sys.argv]), "checks": {}}
    checks = {"cuda_buffers": lambda: check_cuda_buffers(images), "torch_cuda": lambda: check_torch(images),
              "onnxruntime_cuda": lambda: check_onnxruntime_cuda(xs, ref), "tensorrt": lambda: check_tensorrt(xs, ref)}
    for name, fn in checks.items():
        if gpu.get("name") is None and name != "torch_cuda":
            results["checks"][name] = {"status": "skipped", "why": gpu.get("why")}
            continue
        try:
            results["checks"][name] = fn()
        except Exception as exc:  # a check that breaks is a result, not a crash  # noqa: BLE001
            results["checks"][name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                                       "traceback": traceback.format_exc(limit=4)}
        print(f"{name:<18} {json.dumps(results['checks'][name])[:160]}")
    slug = (gpu.get("name") or "nogpu").lower().replace(" ", "_")
    out = args.out or REPO / "benchmarks" / "results" / f"gpu_check_{slug}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    from segrt.files import write_text_atomic

    write_text_atomic(out, json.dumps(results, indent=2) + "\n", "results")
    print(f"wrote {out}")
    statuses = json.dumps(results["checks"])
    return 1 if '"status": "failed"' in statuses else 0


if __name__ == "__main__":
    sys.exit(main())

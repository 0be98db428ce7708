"""What this machine is and which backends can run here, without importing torch."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def h264_available() -> bool:
    """True when PyAV is installed with an H.264 encoder (its wheels have libx264)."""
    try:
        import av

        av.codec.Codec("libx264", "w")
        return True
    except Exception:  # noqa: BLE001  not installed, or built without libx264
        return False


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# the vector extensions ONNX Runtime's 8-bit kernels choose between: INT8 results can differ
# between CPUs with and without them, so a result file records which were there
INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> list[str]:
    """Which of :data:`INT8_FLAGS` the CPU reports (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in INT8_FLAGS if flag in present]
    except OSError:
        pass
    return []


def machine() -> dict:
    """The CPU (and its 8-bit vector extensions), cores, OS, Python and GPU; on a Jetson also
    its L4T release, power mode and clocks."""
    info = {"cpu": cpu_name(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "gpu": gpu()["name"]}
    return {**info, "jetson": tegra} if (tegra := jetson()) else info


def versions() -> dict:
    """Installed versions of segrt and what it runs on (distributions), and the OpenCV in use."""
    names = ["segrt", "numpy", "opencv-python-headless", "opencv-python", "onnxruntime",
             "onnxruntime-gpu", "onnx", "torch", "tensorrt", "cuda-python", "pycuda", "av", "tritonclient", "ray"]
    found = {n: v for n in names if (v := version(n))}
    if importlib.util.find_spec("cv2"):
        import cv2

        found["opencv"] = cv2.__version__
    return found


def command() -> str:
    """The command line of this process, as a user would type it (``segrt run …``)."""
    return " ".join([os.path.basename(sys.argv[0]) if sys.argv else "python", *sys.argv[1:]])


def provenance() -> dict:
    """Where a result came from, for every JSON segrt writes (run reports, eval, bench, zoo,
    benchmarks): the machine, the versions and the command."""
    return {"machine": machine(), "versions": versions(), "command": command()}


def jetson() -> dict | None:
    """Power mode and clocks on a Jetson (``nvpmodel -q``, ``jetson_clocks --show``), else None."""
    release = Path("/etc/nv_tegra_release")
    if not release.is_file():
        return None
    info: dict = {"l4t": release.read_text().splitlines()[0][:120]}
    for key, cmd in (("power_mode", ["nvpmodel", "-q"]), ("clocks", ["jetson_clocks", "--show"])):
        if shutil.which(cmd[0]):
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            info[key] = out.stdout.strip()[:2000]
    return info


def gpu() -> dict:
    """{'name': str | None, 'why': str}: the first NVIDIA GPU as nvidia-smi reports it."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {"name": None, "why": "no NVIDIA driver (nvidia-smi not found)"}
    try:
        out = subprocess.run([smi, "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"name": None, "why": f"nvidia-smi failed: {exc}"}
    line = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
    if not line:
        return {"name": None, "why": f"nvidia-smi found no GPU: {out.stderr.strip()[:200]}"}
    name, cc, driver = (p.strip() for p in line.split(","))
    return {"name": name, "compute_capability": cc, "driver": driver, "why": "ok"}


def backends() -> dict:
    """Backend → (usable, why)."""
    out = {}
    if importlib.util.find_spec("onnxruntime"):
        import onnxruntime as ort

        out["onnxruntime"] = (True, "providers: " + ", ".join(ort.get_available_providers()))
    else:
        out["onnxruntime"] = (False, "not installed: pip install onnxruntime")
    g = gpu()
    if not version("tensorrt"):
        out["tensorrt"] = (False, "not installed: pip install -e '.[tensorrt]' on a machine with an NVIDIA GPU")
    elif g["name"] is None:
        out["tensorrt"] = (False, f"tensorrt {version('tensorrt')} installed but {g['why']}")
    else:
        out["tensorrt"] = (True, f"tensorrt {version('tensorrt')} on {g['name']}: segrt build MODEL.onnx")
    have = {m: importlib.util.find_spec(m) is not None
            for m in ("torch", "onnx", "onnxscript", "onnxconverter_common", "modelopt", "av", "tritonclient", "ray")}
    out["torch"] = (have["torch"], "installed: training, export and .pt models" if have["torch"] else
                    "not installed: pip install torch, then pip install -e '.[train]' in the clone")
    missing = [m for m in ("torch", "onnx", "onnxscript") if not have[m]]
    out["export"] = (not missing, "ready" if not missing else f"needs {', '.join(missing)}: pip install -e '.[export]'")
    missing = [m for m in ("onnx", "onnxconverter_common") if not have[m]]
    out["quantize"] = (not missing, ("ready (INT8 for TensorRT: " + ("ModelOpt installed)" if have["modelopt"] else
                                     "needs nvidia-modelopt)")) if not missing else
                       f"needs {', '.join(missing)}: pip install -e '.[quantize]'")
    out["h264 mp4"] = (h264_available(), "PyAV with libx264" if h264_available() else
                       "PyAV missing or without libx264: mp4 falls back to mp4v (pip install av)")
    out["triton client"] = (have["tritonclient"], "ready: --model triton://HOST:PORT/NAME, segrt export-triton"
                            if have["tritonclient"] else "not installed: pip install -e '.[triton]'")
    out["ray"] = (have["ray"], "ready: segrt batch … --ray ADDRESS" if have["ray"] else
                  "not installed (segrt batch runs a local pool without it): pip install -e '.[ray]'")
    cuda = [n for n in ("cuda-python", "pycuda") if version(n)]
    out["cuda buffers"] = (bool(cuda) and g["name"] is not None,
                           ("via " + ", ".join(cuda)) if cuda else "neither cuda-python nor pycuda installed")
    return out

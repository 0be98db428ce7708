"""TensorRT engines built on first use and cached.

``segrt run --model X.onnx --device tensorrt`` (and ``segrt.Segmenter(..., device="tensorrt")``)
builds the ONNX file into an engine once, stores it with its manifest under
``$SEGRT_CACHE/tensorrt/engines/`` (the shipped ONNX files live in the installed package,
which may be read-only, so engines never go beside them), and reuses it while the ONNX file,
the TensorRT version and the GPU are the ones it was built for. Each of the three is part of
the file name, so engines for two GPUs or two TensorRT versions sit side by side; the engine's
manifest is checked again before reuse (a truncated or edited engine is rebuilt, not run).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from segrt.engines.manifest import load_verified_manifest
from segrt.errors import ModelError, SegrtError
from segrt.files import cache_root, shown


def engine_cache_dir() -> Path:
    return cache_root() / "tensorrt" / "engines"


def cached_engine_path(onnx_path: Path, onnx_sha256: str, gpu: dict, trt_version: str) -> Path:
    """``NAME-SHA16-GPU-smXY-trtVERSION.engine`` in the engine cache."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(gpu["name"]).lower()).strip("-") or "gpu"
    cc = str(gpu["compute_capability"]).replace(".", "")
    return engine_cache_dir() / f"{onnx_path.stem}-{onnx_sha256[:16]}-{slug}-sm{cc}-trt{trt_version}.engine"


def why_not_reusable(engine_path: Path, onnx_sha256: str, trt_version: str, gpu: dict) -> str | None:
    """Why the cached engine at ``engine_path`` cannot be used (missing, damaged, built from
    another ONNX, TensorRT or GPU), or None when it can."""
    from segrt.engines.tensorrt_build import check_engine_matches

    if not engine_path.is_file():
        return "no engine cached yet"
    try:
        manifest = load_verified_manifest(engine_path)
    except SegrtError as exc:
        return f"the cached engine is damaged ({exc})"
    if manifest.engine.get("onnx_sha256") != onnx_sha256:
        return "the cached engine was built from another ONNX file"
    return check_engine_matches(manifest, engine_path, trt_version, gpu)


def engine_for(onnx_path: str | Path, rebuild: bool = False, echo: Callable[[str], object] = print) -> Path:
    """The cached engine for ``onnx_path`` on this GPU and TensorRT, built now if there is
    none that matches (or ``rebuild``)."""
    from segrt.engines.cuda_memory import gpu_info
    from segrt.engines.tensorrt_build import build_engine

    onnx_path = Path(onnx_path)
    source = load_verified_manifest(onnx_path)
    try:
        gpu = gpu_info()
    except SegrtError as exc:
        raise ModelError(f"{shown(onnx_path)}: --device tensorrt builds a TensorRT engine, which needs an NVIDIA "
                         f"GPU: {exc}; run it with ONNX Runtime instead (--device cpu)") from None
    import tensorrt as trt

    path = cached_engine_path(onnx_path, source.model_sha256, gpu, trt.__version__)
    reason = "--rebuild" if rebuild else why_not_reusable(path, source.model_sha256, trt.__version__, gpu)
    if reason is None:
        echo(f"using the cached TensorRT engine {path}")
        return path
    echo(f"building a TensorRT engine for {onnx_path.name} ({reason}); this happens once per ONNX file, "
         f"TensorRT version and GPU, and the engine is cached at {path}")
    build_engine(onnx_path, path, echo=echo)
    return path


def rebuild_if_stale(engine_path: Path, echo: Callable[[str], object] = print) -> None:
    """``--rebuild`` of an ``.engine``: rebuilt in place from the ONNX file it records when it
    does not match this GPU and TensorRT (engines are not portable), left as it is when it
    does. Where TensorRT or the GPU is missing nothing happens here: opening the engine says why."""
    from segrt.engines.cuda_memory import gpu_info
    from segrt.engines.tensorrt_build import build_engine, check_engine_matches, recorded_onnx

    try:  # the GPU first: TensorRT without one logs CUDA errors and may crash later
        gpu = gpu_info()
        import tensorrt as trt
    except (ImportError, OSError, RuntimeError, SegrtError):
        return
    manifest = load_verified_manifest(engine_path)
    mismatch = check_engine_matches(manifest, engine_path, trt.__version__, gpu)
    if mismatch:
        echo(f"rebuilding {engine_path.name} ({mismatch})")
        build_engine(recorded_onnx(manifest, engine_path), engine_path, echo=echo)


def tensorrt_route(onnx_path: Path) -> str:
    """How ``--device tensorrt`` runs an ONNX file here: ``engine`` (TensorRT's Python API,
    built on first use) or ``onnxruntime`` (ONNX Runtime's TensorRT provider, when TensorRT's
    own bindings are missing); a one-line error when neither is installed."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        return "engine"
    try:
        import onnxruntime as ort

        if "TensorrtExecutionProvider" in ort.get_available_providers():
            return "onnxruntime"
    except ImportError:
        pass
    raise ModelError(f"{shown(onnx_path)}: --device tensorrt needs TensorRT and an NVIDIA GPU (pip install -e "
                     "'.[tensorrt]' on that machine, or JetPack on Jetson); TensorRT is not installed here, so run "
                     "it with ONNX Runtime (--device cpu)")

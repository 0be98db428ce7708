"""ONNX → TensorRT engine: one strongly typed build path for TensorRT 10 (Jetson) and 11.

Precision comes from the ONNX graph (FP16 types, INT8 Q/DQ); no precision builder flag or
calibrator is used (TensorRT 11 removed them). The engine is written with a manifest that
records what it is bound to: TensorRT version, GPU name and compute capability, the ONNX
file's SHA-256, precision and I/O, so a mismatched engine is refused instead of crashing.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from segrt.engines.cuda_memory import gpu_info
from segrt.engines.manifest import ModelManifest, load_verified_manifest, manifest_path
from segrt.errors import ModelError, SegrtError
from segrt.files import cache_root, sha256_file, write_bytes_atomic

DEFAULT_WORKSPACE_MB = 2048


def default_timing_cache() -> Path:
    return cache_root() / "tensorrt" / "timing.cache"


def trtexec_command(onnx_path: Path, engine_path: Path, workspace_mb: int, timing_cache: Path | None,
                    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]) -> str:
    """The equivalent trtexec command line (``--stronglyTyped`` is what TensorRT 11 always does)."""
    parts = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}", "--stronglyTyped",
             f"--memPoolSize=workspace:{workspace_mb}M"]
    if timing_cache is not None:
        parts.append(f"--timingCacheFile={timing_cache}")
    for flag, i in (("--minShapes", 0), ("--optShapes", 1), ("--maxShapes", 2)):
        if shapes:
            parts.append(f"{flag}=" + ",".join(f"{n}:{'x'.join(map(str, s[i]))}" for n, s in shapes.items()))
    return " ".join(parts)


def dims(d: Any) -> list[int]:
    """A TensorRT ``Dims`` as a list (-1 for a free axis)."""
    return [int(d[i]) for i in range(len(d))]


def profile_shapes(manifest: ModelManifest, dynamic_dims: list[int], max_batch: int
                   ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """min/opt/max of the input for a graph with free axes: the manifest's size, batch 1..max."""
    base = manifest.preprocess.input_shape(1)
    if 0 in dynamic_dims:
        return base, base, (max_batch, *base[1:])
    return base, base, base


class _Progress:
    """tqdm bars from TensorRT's IProgressMonitor (TensorRT >= 10); built lazily so this
    module imports without TensorRT."""

    @staticmethod
    def create(trt: Any) -> Any:
        from tqdm import tqdm

        class Monitor(trt.IProgressMonitor):
            def __init__(self) -> None:
                trt.IProgressMonitor.__init__(self)
                self.bars: dict[str, Any] = {}

            def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
                self.bars[phase_name] = tqdm(total=num_steps, desc=phase_name, leave=False, disable=None)

            def step_complete(self, phase_name: str, step: int) -> bool:
                bar = self.bars.get(phase_name)
                if bar is not None:
                    bar.update(step + 1 - bar.n)
                return True  # False would cancel the build

            def phase_finish(self, phase_name: str) -> None:
                bar = self.bars.pop(phase_name, None)
                if bar is not None:
                    bar.close()

        return Monitor()


def build_engine(onnx_path: str | Path, output: str | Path | None = None, workspace_mb: int = DEFAULT_WORKSPACE_MB,
                 timing_cache: Path | None = None, max_batch: int = 8, progress: bool = True,
                 echo: Any = print) -> ModelManifest:
    """Builds ``onnx_path`` into ``output`` (default: beside it, ``.engine``); returns the
    engine's manifest. Nothing is written at ``output`` unless the build succeeds."""
    onnx_path = Path(onnx_path)
    output = Path(output) if output else onnx_path.with_suffix(".engine")
    source = load_verified_manifest(onnx_path)
    gpu = gpu_info()  # before any TensorRT object: without a GPU TensorRT can crash, not fail
    try:
        import tensorrt as trt
    except ImportError:
        raise SegrtError("segrt build needs TensorRT: pip install -e '.[tensorrt]' (desktop) or use "
                         "JetPack's python3-libnvinfer (Jetson)") from None
    timing_cache = timing_cache or default_timing_cache()

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly_typed is not None:  # TensorRT 10 needs the flag; 11 is always strongly typed
        flags |= 1 << int(strongly_typed)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        raise ModelError(f"{onnx_path}: TensorRT's ONNX parser refused it: {'; '.join(errors)[:300]}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    cache_bytes = timing_cache.read_bytes() if timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=True)  # a stale cache only costs build time
    if progress and hasattr(trt, "IProgressMonitor"):
        config.progress_monitor = _Progress.create(trt)

    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {}
    inp = network.get_input(0)
    dynamic = [i for i, d in enumerate(dims(inp.shape)) if d < 0]
    if dynamic:
        shapes[inp.name] = profile_shapes(source, dynamic, max_batch)
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, *(trt.Dims(list(s)) for s in shapes[inp.name]))
        config.add_optimization_profile(profile)

    echo(f"building {onnx_path.name} ({source.precision}) for {gpu['name']} with TensorRT {trt.__version__} …")
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if serialized is None:
        raise ModelError(f"{onnx_path}: TensorRT could not build an engine (see the log above); "
                         "try a larger --workspace or report the model")
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(timing_cache, bytes(config.get_timing_cache().serialize()), "timing cache")

    output.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(output, bytes(serialized), "engine")
    tensors = [("input", network.get_input(i)) for i in range(network.num_inputs)]
    tensors += [("output", network.get_output(i)) for i in range(network.num_outputs)]
    io = [{"name": t.name, "mode": mode, "shape": dims(t.shape), "dtype": str(t.dtype)} for mode, t in tensors]
    calibration = source.quantization.get("calibration") or {}
    manifest = dataclasses.replace(source, model_sha256=sha256_file(output), engine={
        "tensorrt_version": trt.__version__, "gpu": gpu["name"], "compute_capability": gpu["compute_capability"],
        "driver": gpu["driver"], "onnx": os.path.relpath(onnx_path.resolve(), output.resolve().parent),
        "onnx_sha256": source.model_sha256, "calibration_sha256": calibration.get("sha256"), "io": io,
        "workspace_mb": workspace_mb, "profile": {k: [list(s) for s in v] for k, v in shapes.items()},
        "build_seconds": round(seconds, 1),
        "trtexec": trtexec_command(onnx_path, output, workspace_mb, timing_cache, shapes)})
    manifest.save(output)
    echo(f"wrote {output} and {manifest_path(output)} in {seconds:.1f} s")
    echo(f"equivalent: {manifest.engine['trtexec']}")
    return manifest


def check_engine_matches(manifest: ModelManifest, engine_path: Path, trt_version: str, gpu: dict) -> str | None:
    """Why an engine cannot run here (another TensorRT or GPU), or None when it can."""
    e = manifest.engine
    if not e:
        return f"{manifest_path(engine_path)} has no engine section; rebuild with 'segrt build'"
    if e.get("tensorrt_version") != trt_version:
        return f"built with TensorRT {e.get('tensorrt_version')}, this machine has {trt_version}"
    if (e.get("gpu"), e.get("compute_capability")) != (gpu["name"], gpu["compute_capability"]):
        return (f"built for {e.get('gpu')} (compute {e.get('compute_capability')}), this machine has "
                f"{gpu['name']} (compute {gpu['compute_capability']})")
    return None


def recorded_onnx(manifest: ModelManifest, engine_path: Path) -> Path:
    """The ONNX an engine was built from, checked against its recorded SHA-256."""
    onnx_path = (engine_path.resolve().parent / manifest.engine.get("onnx", "")).resolve()
    if not onnx_path.is_file():
        raise ModelError(f"{engine_path}: the ONNX it was built from ({onnx_path}) is gone; "
                         "rebuild from an ONNX file with 'segrt build MODEL.onnx'")
    if sha256_file(onnx_path) != manifest.engine.get("onnx_sha256"):
        raise ModelError(f"{onnx_path} changed since {engine_path.name} was built; "
                         "rebuild with 'segrt build' from the file you want")
    return onnx_path

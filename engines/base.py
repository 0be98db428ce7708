"""The backend interface and the lookup table that picks a backend by file suffix.

A backend is a context manager: ``open()`` loads the model and allocates buffers once,
``infer(batch)`` maps float32 (N, 3, h, w) to a uint8 (N, h, w) label map, ``close()``
frees everything. ``input_buffer()`` hands out the preallocated input array; filling it
in place and passing it back to ``infer`` makes the hot loop copy-free.

>>> with open_backend("model.onnx") as net:             # doctest: +SKIP
...     x = net.input_buffer()
...     labels = net.infer(x)                             # uint8 (1, 288, 384)
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from segrt.engines.manifest import ModelManifest
from segrt.errors import ModelError
from segrt.registry import Registry


class Backend(Protocol):
    name: str
    manifest: ModelManifest
    fixed_batch: int | None  # the batch the model's input fixes, None where it is free (known once open)
    max_batch: int | None    # the most a free batch may hold, where the model says (a served model)
    concurrent: bool         # whether infer() may run on several threads at once

    @classmethod
    def from_path(cls, path: Path, **options) -> "Backend":
        """Reads (and checks) the model's metadata; loads nothing heavy yet."""

    def __enter__(self) -> "Backend": ...
    def __exit__(self, *exc: object) -> None: ...
    def input_buffer(self, batch: int = 1) -> np.ndarray: ...
    def infer(self, batch: np.ndarray) -> np.ndarray: ...


class InputBuffer:
    """The input side every backend shares: one float32 (N, 3, h, w) array per batch size,
    and the check that a batch has the shape and dtype the manifest promises."""

    manifest: ModelManifest
    fixed_batch: int | None = None  # the batch the model's input fixes; None where it is free
    max_batch: int | None = None    # the most a free batch may hold (a served model's max_batch_size)
    concurrent: bool = False        # infer() from several threads at once (ONNX Runtime on CPU says yes)
    _input: np.ndarray | None = None

    def input_buffer(self, batch: int = 1) -> np.ndarray:
        """The float32 (batch, 3, h, w) array that ``infer`` reads without copying: a view of
        one buffer that only grows (to the largest batch asked for), never one per batch size."""
        if self._input is None or self._input.shape[0] < batch:
            self._input = np.zeros(self.manifest.preprocess.input_shape(batch), np.float32)
        return self._input[:batch]

    def check_batch(self, batch: np.ndarray) -> None:
        expected = self.manifest.preprocess.input_shape(batch.shape[0])
        if batch.shape != expected or batch.dtype != np.float32:
            raise ValueError(f"expected float32 {expected}, got {batch.dtype} {batch.shape}")


def check_fixed_batch(path: str | Path, fixed: int | None) -> None:
    """A model whose input fixes a batch other than 1 is refused when it loads: segrt feeds
    one frame, or a free batch, per call."""
    if fixed is not None and fixed != 1:
        raise ModelError(f"{path}: the model's input fixes its batch at {fixed}; segrt runs batch 1 or a free "
                         "batch: re-export it with 'segrt export' (batch 1) or 'segrt export --dynamic'")


BYTES_PER_PIXEL = 256  # what a segmentation net's activations take per input pixel, conservatively


def available_memory() -> int | None:
    """Bytes a model may use: ``$SEGRT_MEMORY_LIMIT`` (``8G``, ``512M``, bytes) where set, else
    what this machine can still give (Linux's MemAvailable), else None (no check)."""
    import os

    limit = os.environ.get("SEGRT_MEMORY_LIMIT", "").strip()
    if limit:
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
        number, unit = (limit[:-1], units[limit[-1].upper()]) if limit[-1].upper() in units else (limit, 1)
        try:
            value = float(number) * unit
        except ValueError:
            value = -1.0
        if not 0 < value < 1 << 60:
            raise ModelError(f"SEGRT_MEMORY_LIMIT={limit[:40]!r}: expected a size such as 8G or 512M")
        return int(value)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_input_budget(path: str | Path, manifest: ModelManifest, batch: int = 1) -> None:
    """Refuses, before a runtime allocates anything, a model whose input size needs more
    memory than this machine has (about ``BYTES_PER_PIXEL`` a pixel)."""
    pp = manifest.preprocess
    need, free = batch * pp.width * pp.height * BYTES_PER_PIXEL, available_memory()
    if free is not None and need > free:
        frames = f" x {batch} frames at once" if batch > 1 else ""
        raise ModelError(f"{path}: its {pp.width}x{pp.height} input{frames} needs about {_size(need)} to run, "
                         f"{_size(free)} is free here (or allowed by SEGRT_MEMORY_LIMIT); export it for a smaller "
                         "input ('segrt export --size WxH')" + (", or run fewer streams or --workers 1" if frames
                                                                 else ""))


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


class ManifestBackend(InputBuffer):
    """The lifecycle file-backed backends share: built from a path and its verified manifest,
    ``open()`` on enter and ``close()`` on exit."""

    @classmethod
    def from_path(cls, path: Path, **options):
        from segrt.engines.manifest import load_verified_manifest

        return cls(path, load_verified_manifest(path), **options)

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


# suffix (or URI scheme) → "module:class"; a backend's module (and its heavy imports) loads only when used.
BACKENDS = Registry.table("model file suffix", "segrt.engines", {
    ".onnx": "onnxruntime_backend:OnnxRuntimeBackend", ".pt": "torch_backend:TorchBackend",
    ".engine": "tensorrt_backend:TensorRTBackend", ".plan": "tensorrt_backend:TensorRTBackend",
    "triton://": "triton_backend:TritonBackend"})


def open_backend(path: str | Path, **options) -> Backend:
    """The backend for ``path``'s suffix, constructed (not yet opened) with its manifest. An
    ``.onnx`` with ``device="tensorrt"`` runs as a TensorRT engine, built on first use and
    cached, and an engine with ``rebuild=True`` is rebuilt first if stale
    (:mod:`segrt.engines.engine_cache`): backends only load and run."""
    from segrt.engines.remote import is_remote

    if is_remote(path):
        return BACKENDS.load("triton://").from_path(path, **options)
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found; pass --model with an exported .onnx file")
    if path.suffix.lower() == ".pt":
        from segrt.errors import require_module

        onnx = path.with_suffix(".onnx")
        require_module("torch", f"{path.name} (a PyTorch checkpoint)",
                       f"run {onnx.name} instead (no torch needed)" if onnx.is_file() else
                       "pip install torch, or export it to ONNX on a machine with torch (segrt export)")
    if path.suffix.lower() == ".onnx" and options.get("device") == "tensorrt":
        from segrt.engines.engine_cache import engine_for, tensorrt_route

        if tensorrt_route(path) == "engine":  # else ONNX Runtime's TensorRT provider runs the .onnx
            path = engine_for(path, rebuild=bool(options.get("rebuild")), echo=_stderr)
    elif path.suffix.lower() in (".engine", ".plan") and options.get("rebuild"):
        from segrt.engines.engine_cache import rebuild_if_stale

        rebuild_if_stale(path, echo=_stderr)
    suffix = path.suffix.lower()
    if suffix not in BACKENDS.names():
        raise ModelError(f"{path}: not a model file (suffix {suffix or 'none'}); --model takes a shipped model's "
                         "name, an .onnx, .engine, .plan or .pt file, or a triton:// URL")
    return BACKENDS.load(suffix).from_path(path, **options)


def _stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)

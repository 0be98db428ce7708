"""TensorRT backend: named I/O tensors, ``execute_async_v3`` on one stream, buffers allocated
once (pinned host + device), uint8 label map back. numpy + TensorRT + cuda-python (or pycuda);
no torch.

The engine's manifest must match the running TensorRT and GPU; otherwise the engine is
refused with the reason. This module only loads and runs engines: building them (first use,
``--rebuild``) is :mod:`segrt.engines.engine_cache`'s, which ``open_backend`` calls first. The
GPU is checked before any TensorRT object is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from segrt.engines.base import ManifestBackend, check_fixed_batch
from segrt.engines.cuda_memory import CudaMemory, gpu_info, open_cuda
from segrt.engines.manifest import ModelManifest
from segrt.engines.tensorrt_build import dims
from segrt.errors import ModelError, SegrtError


class TensorRTBackend(ManifestBackend):
    name = "tensorrt"

    def __init__(self, path: Path, manifest: ModelManifest, cuda: str = "auto", **_: object) -> None:
        self.path, self.manifest, self.cuda = Path(path), manifest, cuda
        self._mem: CudaMemory | None = None
        self._engine: Any = None
        self._context: Any = None
        self._input: np.ndarray | None = None
        self._output: np.ndarray | None = None
        self._d_in = self._d_out = 0
        self._cap = self._batch = 0
        self.fixed_batch: int | None = None

    def open(self) -> None:
        from segrt.engines.tensorrt_build import check_engine_matches

        try:  # first: TensorRT without a GPU logs CUDA error 35 and may segfault later
            gpu = gpu_info()
        except SegrtError as exc:
            raise ModelError(f"{self.path}: a TensorRT engine cannot run here: {exc}; run the .onnx with "
                             "ONNX Runtime instead (segrt run … --model MODEL.onnx)") from None
        try:
            import tensorrt as trt
        except ImportError:
            raise SegrtError(f"{self.path}: running an engine needs TensorRT: pip install -e '.[tensorrt]'; "
                             "or run the .onnx with ONNX Runtime") from None
        mismatch = check_engine_matches(self.manifest, self.path, trt.__version__, gpu)
        if mismatch:
            raise ModelError(f"{self.path}: {mismatch}; engines are not portable: rebuild it with --rebuild "
                             f"or 'segrt build {self.manifest.engine.get('onnx', 'MODEL.onnx')}'")
        self._mem = open_cuda(self.cuda)
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise ModelError(f"{self.path}: TensorRT cannot deserialize it (truncated or corrupt); "
                             "rebuild it with 'segrt build'")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        modes = {n: self._engine.get_tensor_mode(n) for n in names}
        inputs = [n for n in names if modes[n] == trt.TensorIOMode.INPUT]
        if inputs != [self.manifest.input_name] or self.manifest.output_name not in names:
            raise ModelError(f"{self.path}: engine I/O {names} does not match the manifest "
                             f"({self.manifest.input_name} → {self.manifest.output_name}); rebuild it")
        self._out_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self.manifest.output_name)))
        fixed = dims(self._engine.get_tensor_shape(self.manifest.input_name))[0]
        self.fixed_batch = fixed if fixed >= 0 else None
        check_fixed_batch(self.path, self.fixed_batch)
        self._allocate()

    def _capacity(self) -> int:
        """The largest batch the engine takes: its profile's maximum, or its fixed batch."""
        assert self._engine is not None
        shape = dims(self._engine.get_tensor_shape(self.manifest.input_name))
        if shape[0] >= 0:
            return shape[0]
        return dims(self._engine.get_tensor_profile_shape(self.manifest.input_name, 0)[2])[0]

    def _allocate(self) -> None:
        """Pinned host and device buffers for the largest batch, once; smaller batches use
        their leading part (views), so varying batch sizes allocate nothing more."""
        assert self._mem is not None and self._context is not None
        self._cap = self._capacity()
        self._set_batch(self._cap)
        out_shape = tuple(self._context.get_tensor_shape(self.manifest.output_name))
        self._input = self._mem.host(self.manifest.preprocess.input_shape(self._cap), np.float32)
        self._output = self._mem.host(out_shape, self._out_dtype)
        self._d_in = self._mem.device(self._input.nbytes)
        self._d_out = self._mem.device(self._output.nbytes)
        self._context.set_tensor_address(self.manifest.input_name, self._d_in)
        self._context.set_tensor_address(self.manifest.output_name, self._d_out)

    def _set_batch(self, batch: int) -> None:
        assert self._context is not None
        shape = self.manifest.preprocess.input_shape(batch)
        if batch > self._cap or not self._context.set_input_shape(self.manifest.input_name, shape):
            raise ValueError(f"{self.path}: the engine does not accept input shape {shape} (its profile "
                             f"is {self.manifest.engine.get('profile') or 'fixed'}); rebuild it with a larger "
                             "--max-batch")
        self._batch = batch

    def input_buffer(self, batch: int = 1) -> np.ndarray:
        """Pinned host memory the preprocessor can fill in place (the first ``batch`` rows)."""
        if self._input is None:
            self._allocate()
        assert self._input is not None
        if batch > self._input.shape[0]:
            self._set_batch(batch)  # raises: more than the engine takes
        return self._input[:batch]

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """float32 (N, 3, h, w) → uint8 (N, h, w), in a reused pinned buffer."""
        if self._context is None or self._mem is None:
            raise RuntimeError("backend is not open; use it as a context manager")
        self.check_batch(batch)
        n = batch.shape[0]
        buf = self.input_buffer(n)
        if batch.ctypes.data != buf.ctypes.data:
            np.copyto(buf, batch)
        if n != self._batch:
            self._set_batch(n)
        self._mem.h2d(self._d_in, buf)
        if not self._context.execute_async_v3(self._mem.stream):
            raise RuntimeError(f"{self.path}: TensorRT execution failed (see the log above)")
        assert self._output is not None
        out = self._output[:n]
        self._mem.d2h(out, self._d_out)
        self._mem.synchronize()
        return out if out.dtype == np.uint8 else out.astype(np.uint8)

    def close(self) -> None:
        self._context = None
        self._engine = None
        if self._mem is not None:
            self._mem.close()
            self._mem = None
        self._input = self._output = None

"""Pinned host memory, device memory and one stream, through cuda-python or pycuda.

cuda-python (``cuda.bindings``, NVIDIA's current choice, wheels for x86-64 and aarch64) is
used when installed; pycuda (builds against a local CUDA toolkit) is the alternative. Both
expose the same small interface, so the TensorRT backend does not care which one it got.
No torch here. Every CUDA call's status is checked; a failure names the call.
"""

from __future__ import annotations

import ctypes
from typing import Any, Protocol

import numpy as np

from segrt.errors import SegrtError


class GpuUnavailable(SegrtError):
    """No usable CUDA device or CUDA Python binding."""


class CudaMemory(Protocol):
    name: str

    def host(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray: ...
    def device(self, nbytes: int) -> int: ...
    def h2d(self, dst: int, src: np.ndarray) -> None: ...
    def d2h(self, dst: np.ndarray, src: int) -> None: ...
    def synchronize(self) -> None: ...
    @property
    def stream(self) -> int: ...
    def close(self) -> None: ...


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # older cuda-python
    return cudart


class CudaPython:
    """cuda-python runtime API. Host buffers are ``cudaMallocHost`` pinned memory wrapped as
    numpy arrays, so the preprocessor writes straight into DMA-able memory."""

    name = "cuda-python"

    def __init__(self, device: int = 0) -> None:
        self.rt = _cudart()
        self._check(self.rt.cudaSetDevice(device), "cudaSetDevice")
        self._stream = self._check(self.rt.cudaStreamCreate(), "cudaStreamCreate")
        self._host: list[int] = []
        self._device: list[int] = []

    def _check(self, result: tuple, call: str) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, text = self.rt.cudaGetErrorString(err)
            raise GpuUnavailable(f"CUDA {call} failed: {text.decode() if isinstance(text, bytes) else text}")
        return rest[0] if len(rest) == 1 else rest

    @property
    def stream(self) -> int:
        return int(self._stream)

    def host(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
        ptr = int(self._check(self.rt.cudaMallocHost(nbytes), "cudaMallocHost"))
        self._host.append(ptr)
        raw = (ctypes.c_byte * nbytes).from_address(ptr)
        return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    def device(self, nbytes: int) -> int:
        ptr = int(self._check(self.rt.cudaMalloc(max(1, nbytes)), "cudaMalloc"))
        self._device.append(ptr)
        return ptr

    def h2d(self, dst: int, src: np.ndarray) -> None:
        self._check(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes,
                                            self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream),
                    "cudaMemcpyAsync(host→device)")

    def d2h(self, dst: np.ndarray, src: int) -> None:
        self._check(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes,
                                            self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self._stream),
                    "cudaMemcpyAsync(device→host)")

    def synchronize(self) -> None:
        self._check(self.rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def close(self) -> None:
        for p in self._device:
            self.rt.cudaFree(p)
        for p in self._host:
            self.rt.cudaFreeHost(p)
        self._host, self._device = [], []
        if self._stream is not None:
            self.rt.cudaStreamDestroy(self._stream)
            self._stream = None


class PyCuda:
    """pycuda driver API on the device's primary context."""

    name = "pycuda"

    def __init__(self, device: int = 0) -> None:
        import pycuda.driver as cuda

        self.cuda = cuda
        cuda.init()
        self.context = cuda.Device(device).retain_primary_context()
        self.context.push()
        self._stream = cuda.Stream()
        self._allocs: list[Any] = []

    @property
    def stream(self) -> int:
        return int(self._stream.handle)

    def host(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return self.cuda.pagelocked_empty(shape, dtype)

    def device(self, nbytes: int) -> int:
        alloc = self.cuda.mem_alloc(max(1, nbytes))
        self._allocs.append(alloc)
        return int(alloc)

    def h2d(self, dst: int, src: np.ndarray) -> None:
        self.cuda.memcpy_htod_async(dst, src, self._stream)

    def d2h(self, dst: np.ndarray, src: int) -> None:
        self.cuda.memcpy_dtoh_async(dst, src, self._stream)

    def synchronize(self) -> None:
        self._stream.synchronize()

    def close(self) -> None:
        for a in self._allocs:
            a.free()
        self._allocs = []
        self.context.pop()


def gpu_info(device: int = 0) -> dict:
    """``{"name", "compute_capability", "driver"}`` of CUDA device ``device``, through
    cuda-python or pycuda, without touching TensorRT. Raises :class:`GpuUnavailable`."""
    try:
        rt = _cudart()
    except ImportError:
        rt = None
    if rt is not None:
        err, count = rt.cudaGetDeviceCount()
        if int(err) != 0 or count <= device:
            raise GpuUnavailable(f"no CUDA device {device} (cudaGetDeviceCount: {count if int(err) == 0 else err}); "
                                 "TensorRT needs an NVIDIA GPU and driver")
        err, prop = rt.cudaGetDeviceProperties(device)
        err2, driver = rt.cudaDriverGetVersion()
        name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
        return {"name": name, "compute_capability": f"{prop.major}.{prop.minor}",
                "driver": f"{driver // 1000}.{driver % 1000 // 10}" if int(err2) == 0 else None}
    try:
        import pycuda.driver as cuda
    except ImportError:
        raise GpuUnavailable("neither cuda-python nor pycuda is installed: pip install -e '.[tensorrt]'") from None
    try:
        cuda.init()
        dev = cuda.Device(device)
    except Exception as exc:  # pycuda raises its own LogicError/RuntimeError  # noqa: BLE001
        raise GpuUnavailable(f"no CUDA device {device} ({exc}); TensorRT needs an NVIDIA GPU and driver") from None
    major, minor = dev.compute_capability()
    version = cuda.get_driver_version()
    return {"name": dev.name(), "compute_capability": f"{major}.{minor}",
            "driver": f"{version // 1000}.{version % 1000 // 10}"}


def open_cuda(prefer: str = "auto", device: int = 0) -> CudaMemory:
    """The CUDA memory helper: ``prefer`` is auto, cuda-python or pycuda. Checks that a GPU
    is usable first (so no TensorRT object is ever created without one)."""
    gpu_info(device)
    order = {"auto": ("cuda-python", "pycuda"), "cuda-python": ("cuda-python",), "pycuda": ("pycuda",)}[prefer]
    for name in order:
        try:
            return CudaPython(device) if name == "cuda-python" else PyCuda(device)
        except ImportError:
            continue
    raise GpuUnavailable(f"{' or '.join(order)} is not installed: pip install -e '.[tensorrt]' "
                         "(cuda-python) or 'segrt[pycuda]'")

"""ONNX Runtime backend: runs the FP32, FP16 and INT8 (Q/DQ) ONNX files; CPU by default."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from segrt.engines.base import ManifestBackend, check_fixed_batch, check_input_budget
from segrt.engines.manifest import ModelManifest
from segrt.errors import ModelError, first_line


class OnnxRuntimeBackend(ManifestBackend):
    """One ``InferenceSession`` with I/O bound to arrays allocated once per batch size.

    ``threads=0`` lets ONNX Runtime use every physical core. ``spin=False`` stops its
    worker threads from busy-waiting between frames: on a 2-core machine spinning threads
    steal the cores that decode, overlay and encode need, and end-to-end FPS drops.
    ``device``: ``cpu``; ``cuda`` (CUDA execution provider, input and output bound on the GPU);
    ``tensorrt`` (ONNX Runtime's TensorRT provider, CUDA and CPU behind it). The GPU ones need
    onnxruntime-gpu.

    On CPU, ``infer`` may be called from several threads at once (``concurrent``): each
    thread gets its own I/O binding and output buffer over the one session, which ONNX
    Runtime runs concurrently.
    """

    name = "onnxruntime"
    PROVIDERS = {"cpu": ("CPUExecutionProvider",),
                 "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
                 "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")}

    def __init__(self, path: Path, manifest: ModelManifest, threads: int = 0, device: str = "cpu",
                 spin: bool = False, **_: object) -> None:
        if device not in self.PROVIDERS:
            raise ModelError(f"device {device!r} for ONNX Runtime: choose {', '.join(self.PROVIDERS)}")
        self.path = Path(path)
        self.manifest = manifest
        self.threads = threads
        self.device = device
        self.providers = self.PROVIDERS[device]
        self.spin = spin
        self._gpu_in = self._gpu_out = None
        self._session: ort.InferenceSession | None = None
        self._binding: ort.IOBinding | None = None
        self._input: np.ndarray | None = None
        self._local = threading.local()

    @property
    def concurrent(self) -> bool:
        """Whether ``infer`` may run on several threads at once (CPU; the GPU path shares buffers)."""
        return self.device == "cpu"

    def open(self) -> None:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self.threads
        opts.log_severity_level = 3  # errors only: segrt says what is wrong in one line of its own
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
        # Not set: "session.set_denormal_as_zero". It sets the FTZ/DAZ flags of the calling thread
        # too, so every later float computation in the process flushes denormals (numpy,
        # hypothesis and user code see it), and on the shipped models it gained nothing
        # measurable (352x256 INT8: 13.0 vs 13.1 ms; 480x352 FP32: 36.8 vs 37.7 ms, 1 thread).
        missing = [p for p in self.providers if p not in ort.get_available_providers()]
        if missing:
            raise ModelError(
                f"ONNX Runtime provider {missing[0]} is not available (available: "
                f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu for CUDA, "
                "or use --device cpu")
        check_input_budget(self.path, self.manifest)
        try:
            # e.g. ModelOpt's TensorRT Q/DQ graphs need WeightBiasQuantization off on CPU
            disabled = list(self.manifest.quantization.get("ort_disabled_optimizers") or [])
            self._session = ort.InferenceSession(str(self.path), opts, providers=list(self.providers),
                                                 disabled_optimizers=disabled)
        except Exception as exc:  # ORT raises its own exception types for bad files  # noqa: BLE001
            raise ModelError(f"{self.path}: ONNX Runtime cannot load it ({first_line(exc)}); re-export the "
                             "model") from None
        names_in = [i.name for i in self._session.get_inputs()]
        names_out = [o.name for o in self._session.get_outputs()]
        m = self.manifest
        if names_in != [m.input_name] or m.output_name not in names_out:
            raise ModelError(
                f"{self.path}: graph I/O {names_in} → {names_out} does not match the manifest "
                f"({m.input_name} → {m.output_name}); re-export the model")
        inp = self._session.get_inputs()[0]
        out = next(o for o in self._session.get_outputs() if o.name == m.output_name)
        if len(inp.shape) != 4 or inp.shape[1] != 3 or inp.type != "tensor(float)":
            raise ModelError(f"{self.path}: input {inp.name} is {inp.type} {inp.shape}, segrt feeds float "
                             "(N, 3, H, W); export the model with 'segrt export'")
        fixed = [d for d in inp.shape[2:] if isinstance(d, int)]
        if len(fixed) == 2 and tuple(fixed) != (m.preprocess.height, m.preprocess.width):
            raise ModelError(f"{self.path}: the graph takes {fixed[1]}x{fixed[0]} input but its manifest says "
                             f"{m.preprocess.width}x{m.preprocess.height}; the manifest belongs to another model: "
                             "re-export it")
        if len(out.shape) != 3 or out.type != "tensor(uint8)":
            raise ModelError(f"{self.path}: output {out.name} is {out.type} {out.shape}, segrt expects a uint8 "
                             "(N, H, W) label map (argmax in the graph); export the model with 'segrt export'")
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        check_fixed_batch(self.path, self.fixed_batch)
        self._binding = self._session.io_binding()

    def close(self) -> None:
        self._binding = None
        self._session = None
        self._input = None
        self._local = threading.local()
        self._gpu_in = self._gpu_out = None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """float32 (N, 3, h, w) → uint8 (N, h, w). The result is a reused buffer (one per
        calling thread): copy it to keep it past the next call."""
        if self._session is None or self._binding is None:
            raise RuntimeError("backend is not open; use it as a context manager")
        self.check_batch(batch)
        batch = np.ascontiguousarray(batch)
        n, _, h, w = batch.shape
        if self.device != "cpu":
            return self._infer_gpu(batch)
        local = self._local  # this thread's binding and output buffer
        if getattr(local, "session", None) is not self._session:
            local.session, local.binding, local.output = self._session, self._session.io_binding(), None
        if local.output is None or local.output.shape[0] < n or local.output.shape[1:] != (h, w):
            local.output = np.empty((n, h, w), np.uint8)  # grows to the largest batch; views below
        out = local.output[:n]
        # bound where it lies: ONNX Runtime reads the caller's array in place, no copy
        local.binding.bind_cpu_input(self.manifest.input_name, batch)
        local.binding.bind_output(self.manifest.output_name, "cpu", 0, np.uint8, out.shape, out.ctypes.data)
        self._session.run_with_iobinding(local.binding)
        return out

    def _infer_gpu(self, batch: np.ndarray) -> np.ndarray:
        """Input and output live on the GPU (allocated once per batch size): one host→device
        copy of the frame, one device→host copy of the uint8 label map."""
        assert self._binding is not None and self._session is not None
        n, _, h, w = batch.shape
        if self._gpu_in is None or tuple(self._gpu_in.shape()) != batch.shape:
            self._gpu_in = ort.OrtValue.ortvalue_from_numpy(batch, "cuda", 0)
            self._gpu_out = ort.OrtValue.ortvalue_from_shape_and_type((n, h, w), np.uint8, "cuda", 0)
            self._binding.bind_ortvalue_input(self.manifest.input_name, self._gpu_in)
            self._binding.bind_ortvalue_output(self.manifest.output_name, self._gpu_out)
        else:
            self._gpu_in.update_inplace(batch)
        self._session.run_with_iobinding(self._binding)
        return self._gpu_out.numpy()

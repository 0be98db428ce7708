"""PyTorch backend for training checkpoints (``.pt``): the accuracy and speed baseline, and
the GPU runtime where TensorRT is absent. Imports torch, so it loads only for ``.pt`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from segrt.engines.base import InputBuffer
from segrt.engines.manifest import ModelManifest, manifest_from_checkpoint
from segrt.files import sha256_file


class TorchBackend(InputBuffer):
    """A checkpoint's network in eval mode; argmax on the device, uint8 label map to the host.

    ``threads=0`` keeps torch's default CPU thread count. ``device``: cpu or cuda (``auto``
    picks cuda when available). On CUDA, ``half`` runs under FP16 autocast and ``cuda_graph``
    captures the forward pass once per batch size and replays it (no per-kernel launch cost).
    """

    name = "torch"

    def __init__(self, path: Path, manifest: ModelManifest, ckpt: dict, threads: int = 0,
                 device: str = "cpu", half: bool = False, cuda_graph: bool = False, **_: object) -> None:
        from segrt.errors import SegrtError

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device not in ("cpu", "cuda"):
            raise SegrtError(f"device {device!r} for a PyTorch checkpoint: choose cpu or cuda")
        if device == "cuda" and not torch.cuda.is_available():
            raise SegrtError("device cuda: this torch build or machine has no CUDA GPU; use --device cpu")
        if (half or cuda_graph) and device != "cuda":
            raise SegrtError("FP16 autocast and CUDA graphs need --device cuda")
        self.path, self.manifest, self._ckpt = Path(path), manifest, ckpt
        self.threads, self.device, self.half, self.cuda_graph = threads, device, half, cuda_graph
        self._net = None
        self._input: np.ndarray | None = None
        self._graphs: dict[int, tuple] = {}

    @classmethod
    def from_path(cls, path: Path, **options) -> "TorchBackend":
        from segrt.train import checkpoint

        ckpt = checkpoint.load(path)
        digest = sha256_file(path)  # the checkpoint is both the source and the model here
        manifest = manifest_from_checkpoint(ckpt, Path(path).stem, digest, digest,
                                            provenance={"checkpoint_epoch": ckpt.get("epoch")})
        return cls(path, manifest, ckpt, **options)

    def __enter__(self) -> "TorchBackend":
        from segrt.train.checkpoint import build_from_checkpoint

        if self.threads:
            torch.set_num_threads(self.threads)
        self._net = build_from_checkpoint(self._ckpt).to(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        self._net = None
        self._graphs = {}

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.half):
            return self._net(x).argmax(1).to(torch.uint8)

    def _graph(self, n: int) -> tuple:
        """(static input, static output, graph) for batch ``n``, captured after a warm-up on
        a side stream as CUDA graph capture requires."""
        if n not in self._graphs:
            shape = self.manifest.preprocess.input_shape(n)
            static_in = torch.zeros(shape, device="cuda")
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._forward(static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
            self._graphs[n] = (static_in, static_out, graph)
        return self._graphs[n]

    @torch.no_grad()
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """float32 (N, 3, h, w) → uint8 (N, h, w)."""
        if self._net is None:
            raise RuntimeError("backend is not open; use it as a context manager")
        self.check_batch(batch)
        x = torch.from_numpy(batch)
        if self.cuda_graph:
            static_in, static_out, graph = self._graph(batch.shape[0])
            static_in.copy_(x, non_blocking=False)
            graph.replay()
            return static_out.cpu().numpy()
        return self._forward(x.to(self.device)).cpu().numpy()

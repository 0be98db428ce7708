"""PyTorch backend for training checkpoints (``.pt``): the accuracy and speed baseline, and
the GPU runtime where TensorRT is absent. Imports torch, so it loads only for ``.pt`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from segrt.engines.manifest import ModelManifest
from segrt.files import sha256_file
from segrt.preprocess import Preprocess


class TorchBackend:
    """A checkpoint's network in eval mode; argmax on the device, uint8 label map to the host.

    ``threads=0`` keeps torch's default CPU thread count.
    """

    name = "torch"

    def __init__(self, path: Path, manifest: ModelManifest, ckpt: dict, threads: int = 0,
                 device: str = "cpu") -> None:
        self.path, self.manifest, self._ckpt = Path(path), manifest, ckpt
        self.threads, self.device = threads, device
        self._net = None
        self._input: np.ndarray | None = None

    @classmethod
    def from_path(cls, path: Path, **options) -> "TorchBackend":
        from segrt.train import checkpoint

        ckpt = checkpoint.load(path)
        manifest = ModelManifest(
            name=Path(path).stem, architecture=ckpt["model"], classes=tuple(ckpt["classes"]),
            palette=tuple(tuple(c) for c in ckpt["palette"]), preprocess=Preprocess.from_dict(ckpt["preprocess"]),
            precision="fp32", opset=0, input_name="image", output_name="labels",
            source_checkpoint_sha256=sha256_file(path), model_sha256=sha256_file(path),
            metrics=ckpt.get("metrics") or {}, provenance={"checkpoint_epoch": ckpt.get("epoch")})
        return cls(path, manifest, ckpt, **options)

    def __enter__(self) -> "TorchBackend":
        from segrt.train.checkpoint import build_from_checkpoint

        if self.threads:
            torch.set_num_threads(self.threads)
        self._net = build_from_checkpoint(self._ckpt).to(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        self._net = None

    def input_buffer(self, batch: int = 1) -> np.ndarray:
        shape = self.manifest.preprocess.input_shape(batch)
        if self._input is None or self._input.shape != shape:
            self._input = np.zeros(shape, np.float32)
        return self._input

    @torch.no_grad()
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """float32 (N, 3, h, w) → uint8 (N, h, w)."""
        if self._net is None:
            raise RuntimeError("backend is not open; use it as a context manager")
        expected = self.manifest.preprocess.input_shape(batch.shape[0])
        if batch.shape != expected or batch.dtype != np.float32:
            raise ValueError(f"expected float32 {expected}, got {batch.dtype} {batch.shape}")
        logits = self._net(torch.from_numpy(batch).to(self.device))
        return logits.argmax(1).to(torch.uint8).cpu().numpy()

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

    @torch.no_grad()
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """float32 (N, 3, h, w) → uint8 (N, h, w)."""
        if self._net is None:
            raise RuntimeError("backend is not open; use it as a context manager")
        self.check_batch(batch)
        logits = self._net(torch.from_numpy(batch).to(self.device))
        return logits.argmax(1).to(torch.uint8).cpu().numpy()

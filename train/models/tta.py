"""Test-time augmentation inside the network, so that it exports into the graph and runs on
every backend (ONNX Runtime, TensorRT) without runtime code.

- ``flip`` averages the class probabilities of the frame and of its mirror image (the
  mirrored map mirrored back): twice the compute, steadier labels on unfamiliar footage.
- ``flip-ms`` does the same at three scales (about 0.75x, 1x and 1.25x of the frame, each
  rounded to a multiple of 32), the probabilities resized back to the frame and averaged:
  about 6.3x the compute of one pass at 608x448, for a GPU with headroom. Its scales are
  fixed when the graph is exported, so it needs a fixed input size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

TTA_MODES = ("flip", "flip-ms")
MULTI_SCALES = (0.75, 1.0, 1.25)


def channel_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the class axis of (N, C, H, W), written out (max, exp, sum, divide): the
    same numbers as ``softmax(1)``, but it exports as element-wise ops and reductions, which
    ONNX Runtime's CPU provider runs over 10x faster than its Softmax on a non-last axis
    (that one transposes every pixel's C values out and back; 200 ms of the flip graph's 400)."""
    e = (logits - logits.amax(1, keepdim=True)).exp()
    return e / e.sum(1, keepdim=True)


def _flip_probs(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    both = channel_softmax(net(torch.cat([x, x.flip(3)])).float())
    n = x.shape[0]
    return (both[:n] + both[n:].flip(3)) / 2


class FlipAverage(nn.Module):
    """``net``'s softmax on ``x`` and on ``x`` mirrored left-right, averaged: (N, C, H, W)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _flip_probs(self.net, x)


def scaled_sizes(width: int, height: int, scales=MULTI_SCALES) -> list[tuple[int, int]]:
    """(width, height) of each scale, rounded to the nearest multiple of 32 (at least 32)."""
    return [(max(32, round(width * s / 32) * 32), max(32, round(height * s / 32) * 32)) for s in scales]


class MultiScaleFlipAverage(nn.Module):
    """Flip-averaged softmax of ``net`` at each of ``sizes`` (fixed at construction, since
    the exported graph has a fixed input size), resized to the input and averaged."""

    def __init__(self, net: nn.Module, width: int, height: int, scales=MULTI_SCALES) -> None:
        super().__init__()
        self.net = net
        self.size = (height, width)
        self.sizes = [(h, w) for w, h in scaled_sizes(width, height, scales)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for size in self.sizes:
            xs = x if size == self.size else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            p = _flip_probs(self.net, xs)
            if size != self.size:
                p = F.interpolate(p, size=self.size, mode="bilinear", align_corners=False)
            total = p if total is None else total + p
        return total / len(self.sizes)


def wrap(net: nn.Module, mode: str, width: int, height: int) -> nn.Module:
    """``net`` with test-time augmentation ``mode`` (one of TTA_MODES) for a width x height input."""
    if mode == "flip":
        return FlipAverage(net)
    if mode == "flip-ms":
        return MultiScaleFlipAverage(net, width, height)
    raise ValueError(f"unknown TTA mode {mode!r}; valid: {', '.join(TTA_MODES)}")

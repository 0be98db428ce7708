"""Test-time augmentation inside the network, so that it exports into the graph and runs on
every backend (ONNX Runtime, TensorRT) without runtime code: flip TTA averages the class
probabilities of the frame and of its mirror image (the mirrored map mirrored back). Twice
the compute, for steadier labels on footage unlike the training frames."""

from __future__ import annotations

import torch
from torch import nn

TTA_MODES = ("flip",)


class FlipAverage(nn.Module):
    """``net``'s softmax on ``x`` and on ``x`` mirrored left-right, averaged: (N, C, H, W)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        both = self.net(torch.cat([x, x.flip(3)])).float().softmax(1)
        n = x.shape[0]
        return (both[:n] + both[n:].flip(3)) / 2

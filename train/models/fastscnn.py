"""Fast-SCNN-style real-time network (Poudel et al., 2019), in plain torch.

A shallow "learning to downsample" stem keeps 1/8 resolution detail; a MobileNetV2-style
branch reaches 1/32 for context; the two are fused at 1/8 and upsampled bilinearly.
Fast-SCNN's pyramid pooling is replaced by a global-average context vector (as in
BiSeNet): adaptive pooling to 2/3/6 bins is not exportable for input sizes that are not
multiples of the bin counts, while a global mean is (ReduceMean in ONNX and TensorRT).
About 1.1 M parameters; ~0.3 GFLOPs at 384x288.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segrt.train.models.layers import DSConv, GlobalContext, InvertedResidual, conv_bn_relu


class FeatureFusion(nn.Module):
    def __init__(self, hi_ch: int, lo_ch: int, out_ch: int) -> None:
        super().__init__()
        self.lo = nn.Sequential(conv_bn_relu(lo_ch, lo_ch, 3, groups=lo_ch),
                                conv_bn_relu(lo_ch, out_ch, 1, relu=False))
        self.hi = conv_bn_relu(hi_ch, out_ch, 1, relu=False)

    def forward(self, hi, lo):
        lo = F.interpolate(lo, size=hi.shape[-2:], mode="bilinear", align_corners=False)
        return F.relu(self.hi(hi) + self.lo(lo))


class FastSCNN(nn.Module):
    def __init__(self, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.downsample = nn.Sequential(conv_bn_relu(3, 32, 3, 2), DSConv(32, 48, 2), DSConv(48, 64, 2))
        self.global_branch = nn.Sequential(
            InvertedResidual(64, 64, 2), InvertedResidual(64, 64), InvertedResidual(64, 64),
            InvertedResidual(64, 96, 2), InvertedResidual(96, 96), InvertedResidual(96, 96),
            InvertedResidual(96, 128), InvertedResidual(128, 128), InvertedResidual(128, 128),
            GlobalContext(128),
        )
        self.fusion = FeatureFusion(64, 128, 128)
        self.classifier = nn.Sequential(DSConv(128, 128), DSConv(128, 128), nn.Dropout(dropout),
                                        nn.Conv2d(128, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float32 (N, 3, H, W) normalised RGB → logits (N, C, H, W)."""
        hi = self.downsample(x)
        fused = self.fusion(hi, self.global_branch(hi))
        logits = self.classifier(fused)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)

"""Building blocks shared by the architectures."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
                 relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DSConv(nn.Sequential):
    """Depthwise-separable conv: 3x3 depthwise then 1x1 pointwise, each with BN + ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(conv_bn_relu(cin, cin, 3, stride, groups=cin), conv_bn_relu(cin, cout, 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection (+ skip)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 6) -> None:
        super().__init__()
        mid = cin * expand
        self.use_skip = stride == 1 and cin == cout
        self.body = nn.Sequential(
            conv_bn_relu(cin, mid, 1),
            conv_bn_relu(mid, mid, 3, stride, groups=mid),
            conv_bn_relu(mid, cout, 1, relu=False),
        )

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_skip else y


class GlobalContext(nn.Module):
    """x + W·mean(x): adds an image-wide context vector to every position."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = conv_bn_relu(channels, channels, 1)

    def forward(self, x):
        return x + self.proj(x.mean(dim=(2, 3), keepdim=True))


def upsample_to(x, ref):
    """Bilinear resize of ``x`` to ``ref``'s spatial size (half-pixel centres, as TensorRT's
    Resize and PyTorch both do by default: no align_corners mismatch)."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)

"""Semantic FPN (Kirillov et al., 2019, the semantic branch of Panoptic FPN), made light for
real time: a pretrained encoder, an LR-ASPP context gate (Howard et al., 2019, MobileNetV3)
on the stride-32 features, a top-down pathway through strides 16 and 8 at ``channels`` and a
last step at stride 4 at ``low_channels``, each smoothed by one depthwise-separable 3x3.

The stride-4 step is what LR-ASPP lacks: CamVid's thin classes (pole, sign, pedestrian,
bicyclist) are a few pixels wide at stride 8. Any encoder of the contract works; the
decoder reads only ``encoder.out_channels`` at strides 4, 8, 16 and 32.
"""

from __future__ import annotations

from torch import nn

from segrt.train.models.encoders import get_encoder
from segrt.train.models.layers import DSConv, conv_bn_relu, upsample_to


class ContextGate(nn.Module):
    """LR-ASPP's high branch: a 1x1 projection scaled per channel by a sigmoid of the
    image-wide mean (a global mean, not a 49x49 pooling, so any input size exports)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.proj = conv_bn_relu(cin, cout, 1)
        self.gate = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.Sigmoid())

    def forward(self, x):
        return self.proj(x) * self.gate(x.mean(dim=(2, 3), keepdim=True))


class SemanticFPN(nn.Module):
    def __init__(self, num_classes: int, encoder: str = "efficientnet_lite0", pretrained: str | None = None,
                 channels: int = 128, low_channels: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = get_encoder(encoder, pretrained=pretrained)
        self.taps = tuple(self.encoder.feature(s) for s in (4, 8, 16, 32))
        c4, c8, c16, c32 = (self.encoder.out_channels[i] for i in self.taps)
        self.context = ContextGate(c32, channels)
        self.lateral16 = conv_bn_relu(c16, channels, 1)
        self.smooth16 = DSConv(channels, channels)
        self.lateral8 = conv_bn_relu(c8, channels, 1)
        self.smooth8 = DSConv(channels, channels)
        self.reduce = conv_bn_relu(channels, low_channels, 1)
        self.lateral4 = conv_bn_relu(c4, low_channels, 1)
        self.smooth4 = DSConv(low_channels, low_channels)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Conv2d(low_channels, num_classes, 1))

    def forward(self, x):
        feats = self.encoder(x)
        f4, f8, f16, f32 = (feats[i] for i in self.taps)
        y = self.context(f32)
        y = self.smooth16(upsample_to(y, f16) + self.lateral16(f16))
        y = self.smooth8(upsample_to(y, f8) + self.lateral8(f8))
        y = self.smooth4(upsample_to(self.reduce(y), f4) + self.lateral4(f4))
        return upsample_to(self.classifier(y), x)

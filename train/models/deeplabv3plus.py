"""DeepLab v3+ (Chen et al., 2018): ASPP at output stride 16 plus a stride-4 decoder.

Encoder MobileNetV2 (default, real-time), a ResNet or EfficientNet-Lite0, each run at output
stride 16 (the last stride-2 stage dilated). ``separable`` makes ASPP's and the decoder's 3x3
convolutions depthwise-separable, as the paper does on Xception: over a 1280-channel
EfficientNet-Lite0 head, a dense 3x3 ASPP branch alone would hold 1.5 M parameters. The
image-pooling branch of ASPP is a global mean broadcast back with Expand, which TensorRT and
ONNX Runtime handle at any size.
"""

from __future__ import annotations

import torch
from torch import nn

from segrt.train.models.encoders import get_encoder
from segrt.train.models.layers import conv_bn_relu, upsample_to


def atrous(cin: int, cout: int, rate: int, separable: bool) -> nn.Sequential:
    """3x3 convolution at dilation ``rate`` + BN + ReLU; ``separable``: the paper's atrous
    separable form, a depthwise 3x3 (dilated) then a pointwise 1x1, each with BN + ReLU."""
    if separable:
        return nn.Sequential(nn.Conv2d(cin, cin, 3, padding=rate, dilation=rate, groups=cin, bias=False),
                             nn.BatchNorm2d(cin), nn.ReLU(inplace=True), conv_bn_relu(cin, cout, 1))
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=rate, dilation=rate, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ASPP(nn.Module):
    def __init__(self, cin: int, cout: int = 256, rates: tuple[int, ...] = (6, 12, 18),
                 separable: bool = False) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_bn_relu(cin, cout, 1)] + [atrous(cin, cout, r, separable) for r in rates])
        self.pool = conv_bn_relu(cin, cout, 1)
        self.project = nn.Sequential(conv_bn_relu(cout * (len(rates) + 2), cout, 1), nn.Dropout(0.1))

    def forward(self, x):
        pooled = self.pool(x.mean(dim=(2, 3), keepdim=True)).expand(-1, -1, x.shape[2], x.shape[3])
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


class DeepLabV3Plus(nn.Module):
    def __init__(self, num_classes: int, encoder: str = "mobilenetv2", pretrained: str | None = None,
                 width: float | None = None, aspp: int = 256, separable: bool = False) -> None:
        super().__init__()
        self.encoder = get_encoder(encoder, pretrained, width=width, output_stride=16)
        # (stride-4, deepest) features: the decoder's low-level input and ASPP's
        self.taps = (self.encoder.feature(4), len(self.encoder.strides) - 1)
        low_ch, high_ch = (self.encoder.out_channels[i] for i in self.taps)
        self.aspp = ASPP(high_ch, aspp, separable=separable)
        self.low = conv_bn_relu(low_ch, 48, 1)
        refine = [atrous(aspp + 48, aspp, 1, True), atrous(aspp, aspp, 1, True)] if separable else \
            [conv_bn_relu(aspp + 48, aspp), conv_bn_relu(aspp, aspp)]
        self.decoder = nn.Sequential(*refine, nn.Conv2d(aspp, num_classes, 1))

    def forward(self, x):
        feats = self.encoder(x)
        low, high = feats[self.taps[0]], feats[self.taps[1]]
        low = self.low(low)
        y = upsample_to(self.aspp(high), low)
        return upsample_to(self.decoder(torch.cat([y, low], dim=1)), x)

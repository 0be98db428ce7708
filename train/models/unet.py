"""U-Net (Ronneberger et al., 2015), classic and with an encoder (ResNet-34 by default)."""

from __future__ import annotations

import torch
from torch import nn

from segrt.train.models.encoders import get_encoder
from segrt.train.models.layers import conv_bn_relu, upsample_to


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class UNet(nn.Module):
    """The classic shape: 4 poolings, 2x2 up-convolutions, concatenated skips. BN added (as
    all current implementations do); ``base`` 64 is the paper's width, 32 trains 4x faster.
    Input height and width must be multiples of 16."""

    def __init__(self, num_classes: int, base: int = 64) -> None:
        super().__init__()
        w = [base * 2**i for i in range(5)]
        self.inc = double_conv(3, w[0])
        self.downs = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), double_conv(w[i], w[i + 1])) for i in range(4))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(w[i + 1], w[i], 2, 2) for i in reversed(range(4)))
        self.convs = nn.ModuleList(double_conv(2 * w[i], w[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(w[0], num_classes, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up, conv in zip(self.ups, self.convs, strict=True):
            y = conv(torch.cat([up(y), skips.pop()], dim=1))
        return self.head(y)


class UNetResNet(nn.Module):
    """An encoder with features at strides 2..32 (a ResNet by default) and a U-Net decoder of
    bilinear upsampling + skips, the segmentation_models.pytorch recipe. The model keeps the
    name ``unet_resnet34``; ``encoder`` picks another. Input sides must be multiples of 32."""

    def __init__(self, num_classes: int, encoder: str = "resnet34", pretrained: str | None = None,
                 decoder: tuple[int, ...] = (256, 128, 64, 32, 16), width: float | None = None,
                 encoder_head: int | None = None) -> None:
        super().__init__()
        self.encoder = get_encoder(encoder, pretrained, width=width, head_channels=encoder_head)
        if tuple(self.encoder.strides) != (2, 4, 8, 16, 32):
            from segrt.errors import ModelError

            raise ModelError(f"unet_resnet34 needs an encoder with features at strides 2, 4, 8, 16, 32; "
                             f"{encoder} has {self.encoder.strides}")
        decoder = tuple(max(8, int(d * (width or 1.0))) for d in decoder)
        enc = self.encoder.out_channels  # strides 2, 4, 8, 16, 32
        skips = (enc[3], enc[2], enc[1], enc[0], 0)
        cin = enc[4]
        blocks = []
        for cout, skip in zip(decoder, skips, strict=True):
            blocks.append(double_conv(cin + skip, cout))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(decoder[-1], num_classes, 3, padding=1)

    def forward(self, x):
        feats = self.encoder(x)
        y = feats[4]
        for i, block in enumerate(self.blocks):
            if i < 4:  # strides 16, 8, 4, 2: upsample and concatenate the encoder's skip
                skip = feats[3 - i]
                y = torch.cat([upsample_to(y, skip), skip], dim=1)
            else:  # back to full resolution, no skip
                y = upsample_to(y, x)
            y = block(y)
        return self.head(y)

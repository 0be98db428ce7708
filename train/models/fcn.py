"""FCN-8s (Long et al., 2015): class scores at strides 32, 16 and 8 fused, on any encoder.

As in most modern re-implementations, the score maps are upsampled bilinearly instead of by
learned deconvolutions initialised to bilinear, which they barely move from.
On a ResNet built only of dense convolutions it is a family INT8 speeds up 2x, once the
ResNet's 7x7 stem is replaced (``stem``: see :class:`~segrt.train.models.encoders.resnet.ResNet`).
"""

from __future__ import annotations

from torch import nn

from segrt.train.models.encoders import get_encoder
from segrt.train.models.layers import GlobalContext, conv_bn_relu, upsample_to


class FCN8s(nn.Module):
    def __init__(self, num_classes: int, encoder: str = "resnet34", pretrained: str | None = None,
                 width: float | None = None, head: int = 512, stem: str | None = None,
                 context: bool = False, encoder_head: int | None = None) -> None:
        super().__init__()
        self.encoder = get_encoder(encoder, pretrained, width=width, stem=stem, head_channels=encoder_head)
        self.taps = tuple(self.encoder.feature(s) for s in (8, 16, 32))
        c8, c16, c32 = (self.encoder.out_channels[i] for i in self.taps)
        # ParseNet-style global context: the image-wide mean of the stride-32 features, added back
        self.context = GlobalContext(c32) if context else nn.Identity()
        self.head32 = nn.Sequential(conv_bn_relu(c32, head), nn.Dropout(0.1), nn.Conv2d(head, num_classes, 1))
        self.score16 = nn.Conv2d(c16, num_classes, 1)
        self.score8 = nn.Conv2d(c8, num_classes, 1)

    def forward(self, x):
        feats = self.encoder(x)
        f8, f16, f32 = (feats[i] for i in self.taps)
        s = self.head32(self.context(f32))
        s16 = self.score16(f16)
        s = upsample_to(s, s16) + s16
        s8 = self.score8(f8)
        s = upsample_to(s, s8) + s8
        return upsample_to(s, x)

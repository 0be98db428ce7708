"""FCN-8s (Long et al., 2015) on a ResNet backbone: class scores at strides 32, 16 and 8 fused.

As in most modern re-implementations, the score maps are upsampled bilinearly instead of by
learned deconvolutions initialised to bilinear, which they barely move from.
Built only of dense convolutions, it is a family INT8 speeds up 2x, once the ResNet's 7x7
stem is replaced (``stem``: see :class:`~segrt.train.models.backbones.resnet.ResNet`).
"""

from __future__ import annotations

from torch import nn

from segrt.train.models.backbones.resnet import ResNet
from segrt.train.models.layers import GlobalContext, conv_bn_relu, upsample_to


class FCN8s(nn.Module):
    def __init__(self, num_classes: int, backbone: str = "resnet34", pretrained: str | None = None,
                 width: float = 1.0, head: int = 512, stem: str = "conv7", context: bool = False) -> None:
        super().__init__()
        self.backbone = ResNet(backbone, width=width, stem=stem)
        if pretrained:
            from segrt.train.models.backbones import load_pretrained

            load_pretrained(self.backbone, pretrained)
        c8, c16, c32 = self.backbone.channels[2:]
        # ParseNet-style global context: the image-wide mean of the stride-32 features, added back
        self.context = GlobalContext(c32) if context else nn.Identity()
        self.head32 = nn.Sequential(conv_bn_relu(c32, head), nn.Dropout(0.1), nn.Conv2d(head, num_classes, 1))
        self.score16 = nn.Conv2d(c16, num_classes, 1)
        self.score8 = nn.Conv2d(c8, num_classes, 1)

    def forward(self, x):
        _, _, f8, f16, f32 = self.backbone(x)
        s = self.head32(self.context(f32))
        s16 = self.score16(f16)
        s = upsample_to(s, s16) + s16
        s8 = self.score8(f8)
        s = upsample_to(s, s8) + s8
        return upsample_to(s, x)

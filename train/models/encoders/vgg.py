"""VGG16-BN convolutional features (Simonyan & Zisserman, 2015), torchvision parameter names."""

from __future__ import annotations

from torch import nn

from segrt.train.models.encoders.base import Encoder, run_stages

CFG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16_bn_features(width: float = 1.0) -> nn.Sequential:
    """``features`` of torchvision's vgg16_bn: conv-BN-ReLU triples and max-pools, indexed alike.

    ``width`` scales the channels (1.0 loads ImageNet weights; smaller trains faster).
    """
    layers: list[nn.Module] = []
    cin = 3
    for v in CFG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            cout = max(8, int(v * width))
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
    return nn.Sequential(*layers)


class VGG16BN(Encoder):
    """The five conv stages of VGG16-BN, each ending in a 2x2 max-pool: features at strides
    2..32. ``features`` is torchvision's layout, so its ImageNet file loads (classifier
    skipped). SegNet walks ``features`` stage by stage itself, keeping the pooling switches."""

    strides = (2, 4, 8, 16, 32)
    skipped_prefixes = ("classifier.",)

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.features = vgg16_bn_features(width)
        self.pools = tuple(i for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d))
        self.out_channels = tuple(self.features[p - 2].num_features for p in self.pools)  # BN before each pool

    def forward(self, x):
        return run_stages(self.features, self.pools, x)

"""VGG16-BN convolutional features (Simonyan & Zisserman, 2015), torchvision parameter names."""

from __future__ import annotations

from torch import nn

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

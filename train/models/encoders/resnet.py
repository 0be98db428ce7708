"""ResNet-18/34/50 (He et al., 2016), torchvision parameter names, optional dilation.

Matching names let users who have ImageNet weights as a torchvision ``state_dict`` file
load them (``pretrained: path/to/resnet34.pth``) without torchvision installed.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from segrt.train.models.encoders.base import Encoder


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


DEPTHS = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet34": (BasicBlock, (3, 4, 6, 3)),
          "resnet50": (Bottleneck, (3, 4, 6, 3))}
STEMS = ("conv7", "patch4", "patch2conv3")


class ResNet(Encoder):
    skipped_prefixes = ("fc.",)  # torchvision's classifier

    """Returns features at strides 2 (stem), 4, 8, 16, 32 from :meth:`forward`.

    ``dilate=(False, False, True)`` replaces layer4's stride with dilation (output stride 16,
    as DeepLab uses); ``(False, True, True)`` gives output stride 8. ``width`` scales every
    layer's channels (0.5 has a quarter of the parameters); ImageNet weights need width 1.

    ``stem="patch4"`` replaces the 7x7 stride-2 convolution and max-pool with one 4x4
    stride-4 convolution (a "patchify" stem); ``stem="patch2conv3"`` with a 2x2 stride-2
    convolution, BN, ReLU and a 3x3 stride-2 convolution. The first feature is then at
    stride 4, like layer1's. Both are for INT8: a 7x7 convolution over 3 channels is the
    layer INT8 cannot speed up on CPU (ONNX Runtime, 2-core Zen 4: 1.43 ms in FP32, 1.47 ms in
    INT8, a fifth of the 0.375-width FCN-8s's FP32 time). ImageNet weights need the 7x7 stem.
    """

    def __init__(self, name: str = "resnet34", dilate: tuple[bool, bool, bool] = (False, False, False),
                 width: float = 1.0, stem: str = "conv7", output_stride: int | None = None) -> None:
        super().__init__()
        if output_stride is not None:  # the encoder contract's way to ask for dilation
            dilations = {32: (False, False, False), 16: (False, False, True), 8: (False, True, True)}
            if output_stride not in dilations:
                raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
            dilate = dilations[output_stride]
        if name not in DEPTHS:
            raise ValueError(f"unknown ResNet {name!r}; valid: {', '.join(DEPTHS)}")
        if stem not in STEMS:
            raise ValueError(f"unknown ResNet stem {stem!r}; valid: {', '.join(STEMS)}")
        block, layers = DEPTHS[name]
        c = [max(8, int(round(v * width / 8)) * 8) for v in (64, 128, 256, 512)]  # multiples of 8
        self.inplanes, self.dilation = c[0], 1
        if stem == "patch4":
            self.conv1: nn.Module = nn.Conv2d(3, c[0], 4, 4, 0, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        elif stem == "patch2conv3":
            mid = max(16, c[0] // 2)
            self.conv1 = nn.Sequential(nn.Conv2d(3, mid, 2, 2, 0, bias=False), nn.BatchNorm2d(mid),
                                       nn.ReLU(inplace=True), nn.Conv2d(mid, c[0], 3, 2, 1, bias=False))
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, c[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._layer(block, c[0], layers[0])
        self.layer2 = self._layer(block, c[1], layers[1], 2, dilate[0])
        self.layer3 = self._layer(block, c[2], layers[2], 2, dilate[1])
        self.layer4 = self._layer(block, c[3], layers[3], 2, dilate[2])
        self.out_channels = (c[0], *(v * block.expansion for v in c))
        strides = [2 if stem == "conv7" else 4, 4]  # stem, layer1 (after the max-pool or patch stem)
        for dilated in dilate:  # layer2..4 halve the resolution unless dilated
            strides.append(strides[-1] * (1 if dilated else 2))
        self.strides = tuple(strides)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _layer(self, block, planes: int, blocks: int, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, self.dilation, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, 1, self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        """Features at ``self.strides``: 2 (4 with a patch stem), 4, 8, 16 and 32 undilated."""
        stem = self.relu(self.bn1(self.conv1(x)))
        c1 = self.layer1(self.maxpool(stem))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return [stem, c1, c2, c3, self.layer4(c3)]


# registered factories (partials keep ResNet's signature, so unknown options are named errors)
resnet18 = partial(ResNet, "resnet18")
resnet34 = partial(ResNet, "resnet34")
resnet50 = partial(ResNet, "resnet50")

"""SegNet (Badrinarayanan et al., 2017): VGG16-BN encoder, mirrored decoder, index unpooling.

TensorRT's ONNX parser supports neither MaxUnpool nor MaxPool's indices output. Here the
pooling indices are kept as a *switch*: for each 2x2 window, a one-hot over its 4 positions
marking the first maximum (ReduceMax, ArgMax and Equal in ONNX). Unpooling multiplies the
decoder's values by the switch and rearranges the 4 positions back into the window
(Reshape/Transpose). This is exactly ``max_unpool2d(max_pool2d(x, 2, return_indices=True))``,
ties included; a test checks it against PyTorch's own.
"""

from __future__ import annotations

import torch
from torch import nn

from segrt.train.models.encoders import get_encoder
from segrt.train.models.layers import conv_bn_relu


def pool_with_switch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, C, H, W), H and W even → (pooled (N, C, H/2, W/2), switch (N, C, 4, H/2, W/2))."""
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, c, 4, h // 2, w // 2)
    pooled, index = windows.max(dim=2)
    positions = torch.arange(4, device=x.device).view(1, 1, 4, 1, 1)
    return pooled, (index.unsqueeze(2) == positions).to(x.dtype)


def unpool_with_switch(y: torch.Tensor, switch: torch.Tensor) -> torch.Tensor:
    """y (N, C, h, w) placed at the switched positions → (N, C, 2h, 2w), zeros elsewhere."""
    n, c, h, w = y.shape
    spread = y.unsqueeze(2) * switch
    return spread.reshape(n, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c, 2 * h, 2 * w)


class SegNet(nn.Module):
    """Input height and width must be multiples of 32 (five 2x2 poolings)."""

    def __init__(self, num_classes: int, width: float = 1.0, pretrained: str | None = None) -> None:
        super().__init__()
        self.encoder = get_encoder("vgg16_bn", pretrained, width=width)
        features = self.encoder.features
        # encoder stages: the conv blocks between pools, as index ranges into encoder.features
        pools = self.encoder.pools
        self.stage_bounds = list(zip([0] + [p + 1 for p in pools[:-1]], pools, strict=True))
        chans = list(self.encoder.out_channels)
        convs = [sum(isinstance(features[j], nn.Conv2d) for j in range(a, b)) for a, b in self.stage_bounds]
        decoder = []
        for k in reversed(range(5)):  # mirror: same conv count, ending in the previous stage's width
            cout = chans[k - 1] if k > 0 else chans[0]
            block = [conv_bn_relu(chans[k], chans[k]) for _ in range(convs[k] - 1)]
            block.append(conv_bn_relu(chans[k], cout))
            decoder.append(nn.Sequential(*block))
        self.decoder = nn.ModuleList(decoder)
        self.classifier = nn.Conv2d(chans[0], num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        switches = []
        for start, pool in self.stage_bounds:
            x = self.encoder.features[start:pool](x)
            x, switch = pool_with_switch(x)
            switches.append(switch)
        for block, switch in zip(self.decoder, reversed(switches), strict=True):
            x = block(unpool_with_switch(x, switch))
        return self.classifier(x)

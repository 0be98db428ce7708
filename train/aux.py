"""Auxiliary heads (PSPNet, BiSeNet, Fast-SCNN's training recipe): a second, small classifier
on an intermediate feature map adds a loss term that shortens the gradient path to the early
layers. Training only: the head wraps the network, is saved in ``last.pt`` for exact resume,
and is never part of ``best.pt`` or the exported graph.
"""

from __future__ import annotations

import torch
from torch import nn

from segrt.errors import ConfigError
from segrt.train.models.layers import upsample_to

# where each architecture has a natural auxiliary tap: a module name inside the network, or
# "encoder": the encoder's stride-16 feature (any encoder of the contract)
AUX_TAPS = {"fastscnn": "global_branch", "fcn8s": "encoder", "deeplabv3plus": "encoder",
            "unet_resnet34": "encoder", "fpn": "encoder"}
AUX_STRIDE = 16


class AuxHead(nn.Module):
    def __init__(self, cin: int, num_classes: int) -> None:
        super().__init__()
        mid = max(32, cin // 4)
        self.body = nn.Sequential(nn.Conv2d(cin, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid),
                                  nn.ReLU(inplace=True), nn.Dropout(0.1), nn.Conv2d(mid, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class WithAux(nn.Module):
    """In training mode returns ``(main, aux)`` logits at input resolution; in eval mode the
    network's output alone."""

    def __init__(self, net: nn.Module, architecture: str, num_classes: int, probe: tuple[int, int]) -> None:
        super().__init__()
        tap = AUX_TAPS.get(architecture)
        try:
            module = net.get_submodule(tap) if tap else None
        except AttributeError:
            module = None
        if module is None:
            raise ConfigError(f"key 'aux_weight': {architecture} (with these model_args) has no auxiliary tap; "
                              f"auxiliary heads exist for {', '.join(AUX_TAPS)}; set it to 0")
        self.net = net
        self._index = module.feature(AUX_STRIDE) if tap == "encoder" else -1
        self._feature: torch.Tensor | None = None
        module.register_forward_hook(self._keep)
        was_training = net.training
        net.eval()
        with torch.no_grad():  # one small forward to learn the tap's channel count
            net(torch.zeros(1, 3, *probe, device=next(net.parameters()).device))
        net.train(was_training)
        self.head = AuxHead(self._feature.shape[1], num_classes).to(self._feature.device)

    def _keep(self, module, inputs, output) -> None:
        self._feature = output[self._index] if isinstance(output, (list, tuple)) else output

    def forward(self, x: torch.Tensor):
        out = self.net(x)
        if not self.training:
            return out
        return out, upsample_to(self.head(self._feature), x)

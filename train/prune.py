"""Narrowing a trained model's encoder head: the channels of the deepest feature that matter
least are dropped, with every weight that makes or reads them, and the rest kept as trained.

EfficientNet-Lite0 ends in a 1x1 convolution to 1280 channels, and a decoder that reads that
feature at 3x3 (U-Net, FCN-8s) spends most of its weights there: a U-Net/Lite0 of 4.7 M
parameters holds 1.0 M in the first decoder convolution alone. Structured pruning of those
channels (Li et al., "Pruning Filters for Efficient ConvNets", 2017), then a short fine-tune,
makes a smaller file of the same model far faster than training a narrower one anew.

A channel's importance is its mean activation on real frames times the L2 norm of the weights
that read it. Where the deepest feature is concatenated with a skip, it comes first (as in
every model here), so its channels keep their indices and the skip's follow.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def head_importance(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Per channel of the encoder's deepest feature: mean activation × norm of its readers."""
    model.eval()
    feature = model.encoder(images)[-1]
    activation = feature.abs().mean(dim=(0, 2, 3))
    width = feature.shape[1]
    readers = torch.zeros(width)
    for name, w in model.state_dict().items():
        if name.startswith("encoder.") or w.dim() != 4 or w.shape[1] < width:
            continue
        readers += w[:, :width].float().pow(2).sum(dim=(0, 2, 3))
    return activation.cpu() * readers.sqrt()


@torch.no_grad()
def narrow_head(full: nn.Module, narrow: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Loads ``full``'s weights into ``narrow`` (the same model with a narrower encoder head),
    keeping the head channels most important on ``images``; returns their indices in ``full``."""
    width, keep = full.encoder.out_channels[-1], narrow.encoder.out_channels[-1]
    if keep > width:
        raise ValueError(f"the narrowed head ({keep} channels) is wider than the trained one ({width})")
    kept = torch.topk(head_importance(full, images), keep).indices.sort().values
    source, state = full.state_dict(), {}
    for name, target in narrow.state_dict().items():
        w = source[name]
        for dim, (have, want) in enumerate(zip(w.shape, target.shape, strict=True)):
            if have != want:
                if have - want != width - keep:
                    raise ValueError(f"{name}: dimension {dim} is {have} in the trained model and {want} in the "
                                     f"narrowed one, not {width - keep} fewer")
                w = w.index_select(dim, torch.cat([kept, torch.arange(width, have)]))
        state[name] = w
    narrow.load_state_dict(state)
    return kept

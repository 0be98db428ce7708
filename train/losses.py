"""Segmentation losses: class-weighted cross-entropy, Dice, their sum, and OHEM.

All take logits (N, C, H, W) and integer targets (N, H, W) whose ``ignore_index`` pixels
(CamVid's void) count nowhere.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int, eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over the classes present in the batch (target or prediction)."""
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1)
    probs = logits.float().softmax(1) * valid
    onehot = F.one_hot(target.clamp(0, num_classes - 1), num_classes).permute(0, 3, 1, 2) * valid
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    total = probs.sum(dims) + onehot.sum(dims)
    present = onehot.sum(dims) > 0
    dice = (2 * inter + eps) / (total + eps)
    return 1 - dice[present].mean() if present.any() else logits.sum() * 0


class OhemCrossEntropy:
    """Online hard example mining (Shrivastava et al., 2016): the mean loss of the pixels the
    model gets most wrong: those with p(true class) < ``threshold``, and at least ``min_kept``."""

    def __init__(self, weight: torch.Tensor | None, ignore_index: int, threshold: float = 0.7,
                 min_kept: int = 100_000) -> None:
        self.weight, self.ignore_index = weight, ignore_index
        self.loss_threshold = -math.log(threshold)
        self.min_kept = min_kept

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pixel = F.cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index,
                                reduction="none").flatten()
        pixel = pixel[target.flatten() != self.ignore_index]
        if pixel.numel() == 0:
            return logits.sum() * 0
        hard = pixel[pixel > self.loss_threshold]
        if hard.numel() < min(self.min_kept, pixel.numel()):
            hard = pixel.topk(min(self.min_kept, pixel.numel())).values
        return hard.mean()


def build_loss(kind: str, weight: torch.Tensor | None, ignore_index: int, entropy_weight: float = 0.0):
    """``kind``: ce, dice, ce+dice or ohem → a callable (logits, target) → scalar loss; with
    ``entropy_weight`` > 0, plus that times :func:`unlabelled_entropy`."""
    loss = _base_loss(kind, weight, ignore_index)
    if not entropy_weight:
        return loss
    return lambda logits, target: (loss(logits, target)
                                   + entropy_weight * unlabelled_entropy(logits, target, ignore_index))


def unlabelled_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Mean softmax entropy (nats) over the pixels without a label (``ignore_index``: CamVid's
    void, a pseudo-labelled frame's unsure pixels); 0 where there are none. Minimised, it asks
    the network to decide where nothing tells it what to answer (entropy minimisation:
    Grandvalet and Bengio 2004; ADVENT, Vu et al. 2019): a pixel it is sure of does not flip
    label from one video frame to the next for a little codec noise."""
    free = target == ignore_index
    if not bool(free.any()):
        return logits.sum() * 0.0  # keeps the graph (and the device) of a real loss
    log_p = F.log_softmax(logits.float(), 1)
    entropy = -(log_p.exp() * log_p).sum(1)
    return entropy[free].mean()


def _base_loss(kind: str, weight: torch.Tensor | None, ignore_index: int):
    ce = torch.nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index)
    if kind == "ce":
        return ce
    if kind == "dice":
        return lambda logits, target: dice_loss(logits, target, ignore_index)
    if kind == "ce+dice":
        return lambda logits, target: ce(logits, target) + dice_loss(logits, target, ignore_index)
    if kind == "ohem":
        return OhemCrossEntropy(weight, ignore_index)
    raise ValueError(f"unknown loss {kind!r}")


def median_frequency_weights(labels: list[np.ndarray], num_classes: int) -> np.ndarray:
    """SegNet's weights: median(f) / f_c, with f_c = pixels of class c / pixels of the images
    where c appears. Classes never seen get weight 0."""
    pixels = np.zeros(num_classes, np.float64)
    image_pixels = np.zeros(num_classes, np.float64)
    for label in labels:
        counts = np.bincount(label.reshape(-1), minlength=num_classes + 1)[:num_classes]
        pixels += counts
        image_pixels += (counts > 0) * label.size
    freq = np.divide(pixels, image_pixels, out=np.zeros_like(pixels), where=image_pixels > 0)
    seen = freq > 0
    weights = np.zeros(num_classes, np.float32)
    weights[seen] = np.median(freq[seen]) / freq[seen]
    return weights

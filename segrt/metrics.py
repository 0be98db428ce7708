"""Segmentation metrics from a confusion matrix; torch-free, shared by training and engines."""

from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """Accumulates an (n, n) matrix of (ground truth, prediction) pixel counts.

    Pixels whose ground truth is outside ``0..n-1`` (CamVid's void label 11) are ignored.
    """

    def __init__(self, num_classes: int) -> None:
        self.n = num_classes
        self.mat = np.zeros((num_classes, num_classes), np.int64)

    def update(self, target: np.ndarray, pred: np.ndarray) -> None:
        """target, pred: integer arrays of the same shape."""
        if target.shape != pred.shape:
            raise ValueError(f"target {target.shape} and prediction {pred.shape} differ in shape")
        t = target.reshape(-1).astype(np.int64)
        p = pred.reshape(-1).astype(np.int64)
        k = (t >= 0) & (t < self.n)
        self.mat += np.bincount(self.n * t[k] + p[k], minlength=self.n**2).reshape(self.n, self.n)

    def compute(self) -> dict:
        """Returns ``miou``, ``per_class_iou``, ``pixel_accuracy`` and ``mean_class_accuracy``.

        A class absent from both ground truth and predictions has IoU NaN and is left out
        of the mean, the usual convention.
        """
        m = self.mat.astype(np.float64)
        tp = np.diag(m)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = tp / (m.sum(0) + m.sum(1) - tp)
            acc = tp / m.sum(1)
        total = m.sum()
        return {
            "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
            "per_class_iou": [float(x) for x in iou],
            "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
            "mean_class_accuracy": float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
        }

"""What people look at after training: curves, a confusion matrix, predictions vs truth."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from segrt.files import save_figure, write_image


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works on servers with no display
    import matplotlib.pyplot as plt

    return plt


def training_curves(metrics_csv: Path, out: Path) -> Path:
    """Train loss and val mIoU per epoch, from ``metrics.csv``."""
    rows = list(csv.DictReader(open(metrics_csv)))
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot([int(r["epoch"]) for r in rows], [float(r["train_loss"]) for r in rows])
    ax1.set(xlabel="epoch", ylabel="train loss", title="loss")
    evals = [r for r in rows if r["val_miou"]]
    ax2.plot([int(r["epoch"]) for r in evals], [100 * float(r["val_miou"]) for r in evals], marker="o")
    ax2.set(xlabel="epoch", ylabel="val mIoU (%)", title="validation")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out, 100)
    plt.close(fig)
    return out


def confusion_matrix(mat: np.ndarray, classes: Sequence[str], out: Path) -> Path:
    """Row-normalised confusion matrix (each row: where that class's pixels went), in %."""
    rows = mat.sum(1, keepdims=True)
    norm = np.divide(mat, rows, out=np.zeros(mat.shape, np.float64), where=rows > 0) * 100
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="ground truth", title="confusion (% of each true class)")
    for i in range(len(classes)):
        for j in range(len(classes)):
            if norm[i, j] >= 1:
                ax.text(j, i, f"{norm[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 50 else "black")
    fig.tight_layout()
    save_figure(fig, out, 100)
    plt.close(fig)
    return out


def prediction_grid(images: Sequence[np.ndarray], labels: Sequence[np.ndarray], preds: Sequence[np.ndarray],
                    palette_rgb: Sequence[Sequence[int]], out: Path, width: int = 320) -> Path:
    """Rows of (frame | ground truth | prediction). Images BGR uint8; labels/preds uint8 maps
    at the image size; void (≥ len(palette)) shows black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(palette_rgb)] = np.asarray(palette_rgb, np.uint8)[:, ::-1]
    rows = []
    for image, label, pred in zip(images, labels, preds, strict=True):
        h = round(image.shape[0] * width / image.shape[1])
        tiles = [cv2.resize(image, (width, h), interpolation=cv2.INTER_AREA)]
        tiles += [cv2.resize(lut[m], (width, h), interpolation=cv2.INTER_NEAREST) for m in (label, pred)]
        rows.append(np.hstack(tiles))
    header = np.full((26, 3 * width, 3), 32, np.uint8)
    for i, title in enumerate(("frame", "ground truth", "prediction")):
        cv2.putText(header, title, (i * width + 8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (240, 240, 240), 1, cv2.LINE_AA)
    return write_image(out, np.vstack([header, *rows]), "prediction grid")

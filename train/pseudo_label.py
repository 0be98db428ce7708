"""Self-training labels (Naive-Student, Xie et al. 2020; class-balanced thresholds as in CBST,
Zou et al. 2018): a teacher labels frames of unlabeled driving clips, and pixels it is unsure
of become void, so a student can train on CamVid's labels plus roads CamVid never showed.

For each frame, the teacher's softmax is averaged over the frame and its mirror image (flip
test-time augmentation) at the teacher's run size, upsampled to the stored frame. A pixel
keeps its label when its confidence reaches its class's threshold: ``threshold``, lowered
for a class until at least ``min_keep`` of the pixels predicted as that class are kept (so
rare, less confident classes such as Pedestrian are not voided wholesale). The result is a
folder-layout dataset (``images/train``, ``masks/train``, ``dataset.yaml``; void = CamVid's
11) that a recipe adds to its training frames with ``extra_data``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from segrt.datasets import evenly_spaced
from segrt.datasets.folder import write_spec
from segrt.errors import DataError
from segrt.files import PendingOutput
from segrt.preprocess import Preprocess, Preprocessor
from segrt.train import checkpoint

STORED_WIDTH = 480  # CamVid's width: a recipe's scale range means the same on both


def read_clip_frames(path: Path, count: int, crop: tuple[int, int, int, int] | None) -> list[np.ndarray]:
    """``count`` frames spread over the clip, cropped to ``crop`` (x, y, w, h) and resized to
    480 pixels wide; BGR uint8."""
    cap = cv2.VideoCapture(str(path))
    out: list[np.ndarray] = []
    try:
        wanted = set(evenly_spaced(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), count))
        index = 0
        while len(out) < len(wanted):
            ok, f = cap.read()
            if not ok:
                break
            if index in wanted:
                if crop is not None:
                    x, y, w, h = crop
                    f = f[y:y + h, x:x + w]
                h, w = f.shape[:2]
                out.append(cv2.resize(f, (STORED_WIDTH, round(h * STORED_WIDTH / w)), interpolation=cv2.INTER_AREA))
            index += 1
    finally:
        cap.release()
    if not out:
        raise DataError(f"{path}: no frames could be decoded; fetch it again with 'segrt data clips'")
    return out


@torch.no_grad()
def teacher_probabilities(net, prep: Preprocessor, frame: np.ndarray, flip: bool = True) -> torch.Tensor:
    """(C, H, W) softmax of the teacher at its run size, averaged with the mirrored frame's,
    upsampled to the frame's size."""
    x = torch.from_numpy(prep(frame))[None]
    if flip:
        x = torch.cat([x, x.flip(3)])
    p = net(x).float().softmax(1)
    if flip:
        p = (p[0] + p[1].flip(2))[None] / 2
    return F.interpolate(p, size=frame.shape[:2], mode="bilinear", align_corners=False)[0]


def class_thresholds(conf: list[np.ndarray], labels: list[np.ndarray], n: int, threshold: float,
                     min_keep: float) -> np.ndarray:
    """Per class: ``threshold``, or lower, so that at least ``min_keep`` of the pixels
    labelled with that class reach it (confidences in 0..255 units)."""
    t = np.full(n, threshold * 255, np.float64)
    for c in range(n):
        values = np.concatenate([cf[lb == c] for cf, lb in zip(conf, labels, strict=True)])
        if values.size:
            t[c] = min(t[c], float(np.quantile(values, 1 - min_keep)))
    return t


def pseudo_label(teacher: Path, clips: list[tuple[str, Path, tuple[int, int, int, int] | None]], out: Path,
                 frames: int, size: tuple[int, int] | None = None, threshold: float = 0.9, min_keep: float = 0.5,
                 void: int = 11, progress: bool | None = None) -> dict:
    """Labels ``frames`` frames spread over ``clips`` ((name, path, crop), in proportion to
    their lengths) with ``teacher`` and writes the dataset to ``out``; returns a summary."""
    ckpt = checkpoint.load(teacher)
    # the output is claimed (parents made) before the first frame: a path that cannot be
    # written fails now, not after the teacher has labelled every frame
    pending = PendingOutput(out, "pseudo-labelled dataset", directory=True, parents=True)
    try:
        return _label_into(pending, ckpt, clips, frames, size, threshold, min_keep, void, progress, teacher)
    except BaseException:
        pending.discard()
        raise


def _label_into(pending: PendingOutput, ckpt: dict, clips, frames: int, size: tuple[int, int] | None,
                threshold: float, min_keep: float, void: int, progress: bool | None, teacher: Path) -> dict:
    net = checkpoint.build_from_checkpoint(ckpt)
    spec = Preprocess.from_dict(ckpt["preprocess"])
    if size is not None:
        spec = Preprocess(size[0], size[1], spec.mean, spec.std)
    prep = Preprocessor(spec)
    lengths = [int(cv2.VideoCapture(str(p)).get(cv2.CAP_PROP_FRAME_COUNT)) for _, p, _ in clips]
    counts = [max(1, round(frames * n / sum(lengths))) for n in lengths]
    names, images, labels, conf = [], [], [], []
    bar = tqdm(total=sum(counts), desc="pseudo-labels", unit="frame",
               disable=None if progress is None else not progress)
    for (name, path, crop), count in zip(clips, counts, strict=True):
        for i, frame in enumerate(read_clip_frames(path, count, crop)):
            p = teacher_probabilities(net, prep, frame)
            c, lb = p.max(0)
            names.append(f"{name}_{i:04d}")
            images.append(frame)
            labels.append(lb.numpy().astype(np.uint8))
            conf.append((c.numpy() * 255).astype(np.uint8))
            bar.update()
    bar.close()
    t = class_thresholds(conf, labels, len(ckpt["classes"]), threshold, min_keep)
    masks = [np.where(cf >= t[lb], lb, void).astype(np.uint8) for cf, lb in zip(conf, labels, strict=True)]
    kept = _write(pending, names, images, masks, ckpt, void)
    return {"frames": len(names), "clips": len(clips), "kept_share": kept,
            "thresholds": {c: round(float(v) / 255, 3) for c, v in zip(ckpt["classes"], t, strict=True)},
            "teacher": str(teacher), "size": [spec.width, spec.height]}


def _write(pending: PendingOutput, names, images, masks, ckpt: dict, void: int) -> float:
    out = pending.path
    (pending.tmp / "images" / "train").mkdir(parents=True)
    (pending.tmp / "masks" / "train").mkdir(parents=True)
    for name, image, mask in zip(names, images, masks, strict=True):
        ok = cv2.imwrite(str(pending.tmp / "images" / "train" / f"{name}.jpg"), image,
                         [cv2.IMWRITE_JPEG_QUALITY, 95])
        ok = ok and cv2.imwrite(str(pending.tmp / "masks" / "train" / f"{name}.png"), mask)
        if not ok:
            raise DataError(f"{out}: could not write {name}; is the disk full?")
    write_spec(pending.tmp, ckpt["classes"], ckpt["palette"], void,
               "pseudo-labels (segrt pseudo-label); never hand-checked")
    pending.commit()
    return float(np.mean([(m != void).mean() for m in masks]))

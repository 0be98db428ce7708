"""Accuracy of an exported model as it runs: backend label maps scored against CamVid labels.

Torch-free. Predictions at network resolution are resized nearest-neighbour to the label
resolution, exactly as the overlay shows them, so the score is that of what users see.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from segrt.engines.manifest import check_labels
from segrt.errors import SegrtError
from segrt.files import save_figure
from segrt.metrics import ConfusionMatrix
from segrt.preprocess import Preprocessor
from segrt.realtime.steady import TemporalMedian, movers, warp_back


def evaluate_backend(backend, ds, progress: bool | None = None) -> dict:
    """mIoU, per-class IoU, pixel accuracy, mean class accuracy of an open backend on ``ds``
    (any dataset reader; its classes must be the model's)."""
    m = backend.manifest
    if tuple(ds.classes) != tuple(m.classes):
        raise SegrtError(f"the model's classes ({len(m.classes)}: {', '.join(m.classes[:3])}, …) are not the "
                         f"dataset's ({len(ds.classes)}: {', '.join(ds.classes[:3])}, …); evaluate on the dataset "
                         "it was trained for")
    prep = Preprocessor(m.preprocess)
    x = backend.input_buffer(1)
    cm = ConfusionMatrix(len(m.classes))
    frame_scores = []
    for i in tqdm(range(len(ds)), desc=f"eval {ds.split}", unit="frame", leave=False,
                  disable=None if progress is None else not progress):
        image, label = ds.read(i)
        prep(image, out=x[0])
        pred = cv2.resize(backend.infer(x)[0], label.shape[::-1], interpolation=cv2.INTER_NEAREST)
        check_labels(pred, m, getattr(backend, "path", m.name))
        cm.update(label, pred)
        frame_scores.append(frame_miou(label, pred, len(m.classes)))
    return {**cm.compute(), "classes": list(m.classes), "frames": len(ds), "split": ds.split,
            "confusion": cm.mat.tolist(), "frame_miou": frame_scores}


def frame_miou(label: np.ndarray, pred: np.ndarray, n: int) -> float:
    """mIoU of one frame over the classes present in its labels or prediction."""
    one = ConfusionMatrix(n)
    one.update(label, pred)
    return one.compute()["miou"]


def predict(backend, images: list[np.ndarray], sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    """Label maps of BGR ``images``, resized (nearest) to ``sizes`` (W, H)."""
    prep = Preprocessor(backend.manifest.preprocess)
    x = backend.input_buffer(1)
    out = []
    for image, size in zip(images, sizes, strict=True):
        prep(image, out=x[0])
        out.append(cv2.resize(backend.infer(x)[0], size, interpolation=cv2.INTER_NEAREST))
    return out


def worst_frames(backend, ds, metrics: dict, out: Path, count: int = 6) -> Path:
    """A grid (frame | ground truth | prediction) of the ``count`` frames with the lowest mIoU."""
    from segrt.plots import prediction_grid

    scores = np.asarray(metrics["frame_miou"], np.float64)
    order = [int(i) for i in np.argsort(np.nan_to_num(scores, nan=1.0))[:count]]
    images, labels = zip(*(ds.read(i) for i in order), strict=True)
    preds = predict(backend, list(images), [lbl.shape[::-1] for lbl in labels])
    return prediction_grid(images, labels, preds, backend.manifest.palette, out)


def compare(a: dict, b: dict) -> dict:
    """Per-class IoU deltas (points) of ``b`` against ``a``, e.g. INT8 against FP32."""
    if a["classes"] != b["classes"]:
        raise SegrtError("the two models have different classes; compare models of the same dataset")
    return {"miou_delta": round(100 * (b["miou"] - a["miou"]), 3),
            "pixel_accuracy_delta": round(100 * (b["pixel_accuracy"] - a["pixel_accuracy"]), 3),
            "per_class_delta": {c: round(100 * (y - x), 3) for c, x, y in
                                zip(a["classes"], a["per_class_iou"], b["per_class_iou"], strict=True)}}


def format_compare(d: dict, name_a: str, name_b: str) -> str:
    rows = [f"{'class':<14}{'Δ IoU':>9}   ({name_b} − {name_a}, points)"]
    rows += [f"{c:<14}{v:>+9.2f}" for c, v in d["per_class_delta"].items()]
    rows.append(f"mIoU {d['miou_delta']:+.2f}  pixel accuracy {d['pixel_accuracy_delta']:+.2f}")
    return "\n".join(rows)


def frames_of(source):
    """The frames of an entered source, until it ends."""
    while (frame := source.read()) is not None:
        yield frame


FLOW_SIZE = (480, 272)  # (w, h) the optical flow of --warp is measured at, whatever the model's size


def gray_for_flow(frame_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.resize(frame_bgr, FLOW_SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)


def _labelled(backend, frames, limit: int | None, progress: bool | None, warp: bool, steady: bool):
    """(labels, grey frame for the flow or None) per frame, in order; with ``steady``, the labels
    as ``segrt run --steady`` writes them (segrt.realtime.steady)."""
    prep = Preprocessor(backend.manifest.preprocess)
    x = backend.input_buffer(1)
    held = TemporalMedian(movers(backend.manifest.classes)) if steady else None
    for i, frame in enumerate(tqdm(frames, desc="flicker", unit="frame", leave=False,
                                   disable=None if progress is None else not progress)):
        if limit is not None and i >= limit:
            break
        prep(frame, out=x[0])
        out = (backend.infer(x)[0].copy(), gray_for_flow(frame) if warp else None)
        out = held.push(*out, frame) if held is not None else out
        if out is not None:
            yield out
    last = held.flush() if held is not None else None
    if last is not None:
        yield last


def flicker(backend, frames, limit: int | None = None, progress: bool | None = None, pairs: bool = False,
            warp: bool = False, steady: bool = False) -> dict:
    """Temporal consistency on consecutive frames: for each pair, the share of pixels whose
    label changed. A steady scene filmed from a moving car changes a few percent per frame;
    much more is flicker the eye sees as noise. ``pairs``: also ``changed`` (C, C), pixels that
    went from class i to class j, and ``seen`` (C,), pixels of each class over all frames.
    ``steady``: of the labels filtered in time as ``segrt run --steady`` does.

    ``warp``: also ``warped_mean``, the same share after the previous labels are moved along
    the optical flow between the two frames (OpenCV's DIS, measured on the frames at
    FLOW_SIZE, the same for every model), over the pixels that were already in view: a change
    the camera's motion explains (a pole's edge that moved two pixels) is not counted, a label
    that flips on the same piece of the scene is; with ``pairs``, ``changed_warped`` too."""
    n = len(backend.manifest.classes)
    changed, seen = np.zeros((n, n), np.int64), np.zeros(n, np.int64)
    changed_warped, warped, kept = np.zeros((n, n), np.int64), [], 0
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if warp else None
    prev, prev_gray, changes = None, None, []
    for labels, gray in _labelled(backend, frames, limit, progress, warp, steady):
        if pairs:
            seen += np.bincount(labels.ravel(), minlength=n)[:n]
        if prev is not None:
            moved = labels != prev
            changes.append(float(moved.mean()))
            if pairs:
                np.add.at(changed, (prev[moved], labels[moved]), 1)
            if warp:
                back, inside = warp_back(prev, dis.calc(gray, prev_gray, None))
                flipped = (labels != back) & inside
                warped.append(float(flipped.sum() / max(1, inside.sum())))
                kept += int(inside.sum())
                if pairs:
                    np.add.at(changed_warped, (back[flipped], labels[flipped]), 1)
        prev, prev_gray = labels, gray
    c = np.asarray(changes) if changes else np.zeros(1)
    out = {"pairs": len(changes), "mean": float(c.mean()), "p50": float(np.median(c)),
           "p95": float(np.percentile(c, 95)), "per_pair": [round(v, 5) for v in changes]}
    if warp:
        out["warped_mean"] = float(np.mean(warped)) if warped else 0.0
    if pairs:
        out.update(changed=changed, seen=seen, frames=len(changes) + (prev is not None),
                   pixels=0 if prev is None else prev.size * len(changes))
        if warp:
            out.update(changed_warped=changed_warped, pixels_warped=kept)
    return out


def flicker_plot(results: dict[str, dict], out: Path) -> Path | None:
    """Label-change share per consecutive frame pair, one line per model."""
    try:
        from segrt.plots import _pyplot

        plt = _pyplot()
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name, r in results.items():
        ax.plot(100 * np.asarray(r["per_pair"]), label=f"{name} (mean {100 * r['mean']:.1f}%)", lw=1)
    ax.set(xlabel="frame pair", ylabel="pixels that changed label (%)", title="temporal consistency (flicker)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out, 100)
    plt.close(fig)
    return out


def sky_road_shares(labels: np.ndarray, classes: list[str]) -> dict[str, float]:
    """On a forward-facing road frame's label map: the share of the top 15 % of rows called
    Sky (and Building, the usual mistake there) and of the bottom-centre block (rows below
    85 %, the middle 30 % of columns: the lane ahead) called Road."""
    h, w = labels.shape
    top, bottom = labels[: int(h * 0.15)], labels[int(h * 0.85):, int(w * 0.35):int(w * 0.65)]
    return {"top_sky": float((top == classes.index("Sky")).mean()),
            "top_building": float((top == classes.index("Building")).mean()),
            "bottom_road": float((bottom == classes.index("Road")).mean())}


def format_metrics(m: dict) -> str:
    """A per-class IoU table followed by mIoU and accuracies, in percent."""
    w = max(14, *(len(c) + 2 for c in m["classes"]))
    rows = [f"{'class':<{w}}{'IoU %':>8}"]
    rows += [f"{c:<{w}}{100 * v:>8.1f}" for c, v in zip(m["classes"], m["per_class_iou"], strict=True)]
    rows.append(f"mIoU {100 * m['miou']:.2f}  pixel accuracy {100 * m['pixel_accuracy']:.2f}  "
                f"mean class accuracy {100 * m['mean_class_accuracy']:.2f}  ({m['frames']} {m['split']} frames)")
    return "\n".join(rows)

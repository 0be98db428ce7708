"""What ``segrt run --steady`` does to things that move on their own: a car, pedestrian or
cyclist cut from one CamVid val frame by its label and pasted on another, moving sideways while
the camera stands still. Scored on the middle frame of each three-frame clip, with and without
the filter.

    python3 benchmarks/steady_objects.py MODEL [MODEL ...] [--camvid DIR] [--out FILE.json]

Each of the 101 val frames is the background of one clip; its object comes from another val
frame (the connected pieces of Car, Pedestrian and Bicyclist of at least MIN_AREA pixels that
do not touch the frame's sides), pasted where it was in its own frame and moved ``speed``
pixels a frame (4, 12, 24 at 480 px wide: 1-5 % of the width). Reported per speed:

- ``recall``: of the object's pixels in the middle frame, the share labelled its class (the
  filter could drop a thing whose motion the flow misses);
- ``ghost``: of the pixels it covers in the frames either side but not in the middle one, the
  share labelled its class (the filter could drag it along);
- ``miou``: the whole middle frame.

Each as the model gives it (raw), through the filter (steady), through the filter without its
rule that leaves things that move on their own alone (steady_all_classes) and through the
median without the flow (no_flow). With the rule, the pasted classes come out exactly as the
model labels them, by construction: the figure that measures something is steady_all_classes.
Pasted objects have hard edges and the background does not move, so this is the flow's easy
case for the background and a plain one for the object. A model trained on CamVid train+val
(the shipped CPU default) has seen these backgrounds and objects, each in its own frame.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PASTED = ("Car", "Pedestrian", "Bicyclist")
MIN_AREA = 400   # pixels at 480x360: about 20x20
SPEEDS = (4, 12, 24)


@dataclass(frozen=True)
class Thing:
    frame: int
    cls: int
    box: tuple[int, int, int, int]  # x, y, w, h in its frame
    mask: np.ndarray                # bool (h, w)
    pixels: np.ndarray              # BGR (h, w, 3)


def things_of(ds, classes: tuple[str, ...]) -> list[Thing]:
    """Every whole mover of at least MIN_AREA pixels in ``ds``, frame by frame."""
    out = []
    for i in range(len(ds)):
        image, label = ds.read(i)
        w = label.shape[1]
        for name in PASTED:
            c = classes.index(name)
            n, comp, stats, _ = cv2.connectedComponentsWithStats((label == c).astype(np.uint8), connectivity=8)
            for k in range(1, n):
                x, y, bw, bh, area = (int(v) for v in stats[k])
                if area >= MIN_AREA and x > 0 and x + bw < w:
                    mask = comp[y:y + bh, x:x + bw] == k
                    out.append(Thing(i, c, (x, y, bw, bh), mask, image[y:y + bh, x:x + bw].copy()))
    return out


def paste(image: np.ndarray, label: np.ndarray | None, thing: Thing, x: int) -> np.ndarray:
    """``thing`` drawn into a copy of ``image`` (or of ``label``, as its class) at column x."""
    _, y, bw, bh = thing.box
    out = (image if label is None else label).copy()
    region = out[y:y + bh, x:x + bw]
    region[thing.mask] = thing.pixels[thing.mask] if label is None else thing.cls
    return out


def footprint(thing: Thing, shape: tuple[int, int], x: int) -> np.ndarray:
    """bool ``shape``: the pixels ``thing`` covers at column x."""
    out = np.zeros(shape, bool)
    _, y, bw, bh = thing.box
    out[y:y + bh, x:x + bw] = thing.mask
    return out


def positions(thing: Thing, width: int, speed: int) -> list[int]:
    """Its column in frames n-1, n, n+1: where it was, moved to fit all three in the frame."""
    x, _, bw, _ = thing.box
    assert bw + 2 * speed <= width, f"a thing {bw} px wide cannot move {speed} px a frame within {width}"
    x = min(max(x, speed), width - bw - speed)
    return [x - speed, x, x + speed]


def share(pred: np.ndarray, where: np.ndarray, cls: int) -> tuple[int, int]:
    return int((pred[where] == cls).sum()), int(where.sum())


def score(backend, ds, things: list[Thing], speed: int) -> dict:
    from steady_motion import WAYS, middle_three_ways

    from segrt.metrics import ConfusionMatrix

    n = len(backend.manifest.classes)
    cms = {k: ConfusionMatrix(n) for k in WAYS}
    hits = {k: {m: np.zeros(4, np.int64) for m in PASTED} for k in WAYS}  # recall hit, of; ghost hit, of
    clips = dict.fromkeys(PASTED, 0)
    for i in range(len(ds)):
        image, label = ds.read(i)
        k = (7 * i) % len(things)
        while things[k].frame == i:
            k = (k + 1) % len(things)
        thing = things[k]
        xs = positions(thing, label.shape[1], speed)
        frames = [paste(image, None, thing, x) for x in xs]
        truth = paste(image, label, thing, xs[1])
        at = [footprint(thing, label.shape, x) for x in xs]
        ghost = (at[0] | at[2]) & ~at[1]
        name = backend.manifest.classes[thing.cls]
        clips[name] += 1
        for way, pred in middle_three_ways(backend, frames, label.shape[::-1]).items():
            cms[way].update(truth, pred)
            hits[way][name] += (*share(pred, at[1], thing.cls), *share(pred, ghost, thing.cls))
    out = {}
    for way in WAYS:
        r = cms[way].compute()
        per = {m: {"recall": round(100 * v[0] / max(1, v[1]), 2), "ghost": round(100 * v[2] / max(1, v[3]), 2),
                   "pixels": int(v[1]), "clips": clips[m]} for m, v in hits[way].items()}
        tot = sum(hits[way].values())
        out[way] = {"miou": round(100 * r["miou"], 2), "recall": round(100 * tot[0] / max(1, tot[1]), 2),
                    "ghost": round(100 * tot[2] / max(1, tot[3]), 2), "per_class": per}
    return out


def main() -> int:
    from steady_motion import camvid_val_cli, write_result

    from segrt.realtime.api import Segmenter

    got = camvid_val_cli(__doc__)
    if got is None:
        return 2
    args, ds = got
    rows = []
    for model in args.models:
        with Segmenter(model, threads=args.threads) as seg:
            classes = tuple(seg.backend.manifest.classes)
            if not set(PASTED) <= set(classes):
                print(f"error: {model}: its classes lack {', '.join(sorted(set(PASTED) - set(classes)))}; "
                      "this benchmark takes models of CamVid's classes", file=sys.stderr)
                return 2
            things = things_of(ds, classes)
            if len({t.frame for t in things}) < 2:
                print(f"error: --camvid {args.camvid}: its val frames hold whole cars, pedestrians or cyclists of "
                      f"{MIN_AREA}+ pixels in fewer than two frames; use the full CamVid val split", file=sys.stderr)
                return 2
            row = {"model": model.name, "objects": len(things), "speeds": {}}
            for speed in SPEEDS:
                m = row["speeds"][f"{speed} px"] = score(seg.backend, ds, things, speed)
                print(f"{model.name:44s} {speed:2d} px/frame  recall {m['raw']['recall']:6.2f} -> "
                      f"{m['steady']['recall']:6.2f} (all classes {m['steady_all_classes']['recall']:6.2f}, "
                      f"no flow {m['no_flow']['recall']:6.2f})  ghost {m['raw']['ghost']:5.2f} -> "
                      f"{m['steady']['ghost']:5.2f}  mIoU {m['raw']['miou']:6.2f} -> {m['steady']['miou']:6.2f} "
                      f"(all classes {m['steady_all_classes']['miou']:6.2f})", flush=True)
        rows.append(row)
    write_result(args, __doc__, rows, frames=len(ds), min_area=MIN_AREA)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What ``segrt run --steady`` costs in accuracy when the camera moves: CamVid val frames as the
middle of three-frame clips made by moving a crop window (a zoom towards the centre, as a car
driving forward sees it, or a pan), scored on the middle frame's labels with and without the
median of three frames in time.

    python3 benchmarks/steady_motion.py MODEL [MODEL ...] [--camvid DIR] [--out FILE.json]

The crop is 80 % of the frame, so its neighbours have real pixels to move into. A zoom of
``s`` shows frame n-1 a crop (1+s) times as wide and frame n+1 one (1+s) times narrower; a
pan of ``d`` pixels moves the crop d pixels left and right. Labels flipping in place are not
in these clips (the frames are one picture moved), so this measures only what the filter
loses on motion: thin things the flow misses that move more than their width a frame.
``miou_steady_without_flow`` is the plain median of the three frames, for comparison;
``miou_steady_all_classes`` the filter without its rule that leaves cars, people and cyclists
as each frame labels them (what it gives up on them: ``per_class_delta_all_classes``).

Motion in real driving clips, measured with DIS flow on the three held-out clips and the
demo clip: 90 % of pixels move under 0.6-2.0 % of the frame's width a frame (99 %: 1-4 %).
Here a zoom of 2 % moves the crop's border by 1 % of its width, a pan of 4 px by 1 %, 12 px
by 3 % and 24 px by 6 %.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CROP = 0.8
MOTIONS = {"zoom 2%": ("zoom", 0.02), "zoom 5%": ("zoom", 0.05), "pan 4 px": ("pan", 4), "pan 12 px": ("pan", 12),
           "pan 24 px": ("pan", 24)}


def window(w: int, h: int, kind: str, amount: float, step: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of frame ``step`` (-1, 0, 1) of a clip moving by ``amount``."""
    cw, ch = CROP * w, CROP * h
    cx, cy = w / 2, h / 2
    if kind == "zoom":
        f = (1 + amount) ** -step  # frame n-1 wider, frame n+1 narrower
        cw, ch = cw * f, ch * f
    else:
        cx += step * amount
    return round(cx - cw / 2), round(cy - ch / 2), round(cx + cw / 2), round(cy + ch / 2)


def clip_of(image: np.ndarray, kind: str, amount: float) -> list[np.ndarray]:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = window(w, h, kind, amount, 0)
    size = (x1 - x0, y1 - y0)
    out = []
    for step in (-1, 0, 1):
        a, b, c, d = window(w, h, kind, amount, step)
        out.append(cv2.resize(image[b:d, a:c], size, interpolation=cv2.INTER_AREA))
    return out


WAYS = ("raw", "steady", "steady_all_classes", "no_flow")  # what middle_three_ways returns


def middle_three_ways(backend, frames: list[np.ndarray], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The middle frame of a three-frame clip, labelled as it is (raw), through the filter that
    ``segrt run --steady`` applies (steady), through it without its rule for things that move
    on their own (steady_all_classes) and through the median without the flow (no_flow), each
    at ``size`` (w, h)."""
    from segrt.preprocess import Preprocessor
    from segrt.realtime.steady import TemporalMedian, median3, movers

    prep, x = Preprocessor(backend.manifest.preprocess), backend.input_buffer(1)
    preds = []
    for frame in frames:
        prep(frame, out=x[0])
        preds.append(backend.infer(x)[0].copy())
    out = {"raw": preds[1], "no_flow": median3(*preds)}
    for way, keep in (("steady", movers(backend.manifest.classes)), ("steady_all_classes", None)):
        steady: TemporalMedian[int] = TemporalMedian(keep)
        middle = [steady.push(p, k, f) for k, (p, f) in enumerate(zip(preds, frames, strict=True))][2]
        assert middle is not None and middle[1] == 1
        out[way] = middle[0]
    return {k: cv2.resize(p, size, interpolation=cv2.INTER_NEAREST) for k, p in out.items()}


def score(backend, ds, kind: str, amount: float) -> dict:
    from segrt.metrics import ConfusionMatrix

    n = len(backend.manifest.classes)
    cms = {k: ConfusionMatrix(n) for k in WAYS}
    for i in range(len(ds)):
        image, label = ds.read(i)
        h, w = label.shape
        x0, y0, x1, y1 = window(w, h, kind, amount, 0)
        truth = label[y0:y1, x0:x1]
        ways = middle_three_ways(backend, clip_of(image, kind, amount), truth.shape[::-1])
        for k, c in cms.items():
            c.update(truth, ways[k])
    r = {k: c.compute() for k, c in cms.items()}

    def delta(way: str) -> dict:
        return {c: round(100 * (b - a), 2) for c, a, b in
                zip(backend.manifest.classes, r["raw"]["per_class_iou"], r[way]["per_class_iou"], strict=True)}

    return {"miou_raw": round(100 * r["raw"]["miou"], 2), "miou_steady": round(100 * r["steady"]["miou"], 2),
            "miou_steady_without_flow": round(100 * r["no_flow"]["miou"], 2),
            "miou_steady_all_classes": round(100 * r["steady_all_classes"]["miou"], 2),
            "per_class_delta_all_classes": delta("steady_all_classes"), "per_class_delta": delta("steady")}


def camvid_val_cli(doc: str):
    """The command line these clip benchmarks share: (args, CamVid val) or None after one line
    on stderr. Options: MODEL..., --camvid, --threads, --out."""
    from segrt.datasets import open_dataset

    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--camvid", type=Path, default=None, help="[default: $SEGRT_CAMVID]")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    args.camvid = args.camvid or (Path(os.environ["SEGRT_CAMVID"]) if os.environ.get("SEGRT_CAMVID") else None)
    if args.camvid is None:
        print("error: --camvid: no CamVid folder; pass --camvid DIR or set SEGRT_CAMVID", file=sys.stderr)
        return None
    return args, open_dataset("camvid", args.camvid, "val")


def write_result(args, doc: str, rows: list, **fields) -> None:
    """The result file, if --out: what, the command, the rows, the machine and versions."""
    from segrt import envinfo
    from segrt.files import write_text_atomic

    if args.out:
        out = {"what": doc.split("\n\n")[0].replace("\n", " "), **fields, "models": rows,
               **envinfo.provenance()}  # with the command line
        write_text_atomic(args.out, json.dumps(out, indent=2) + "\n", "result")


def main() -> int:
    from segrt.realtime.api import Segmenter

    got = camvid_val_cli(__doc__)
    if got is None:
        return 2
    args, ds = got
    rows = []
    for model in args.models:
        with Segmenter(model, threads=args.threads) as seg:
            row = {"model": model.name, "motions": {}}
            for name, (kind, amount) in MOTIONS.items():
                m = row["motions"][name] = score(seg.backend, ds, kind, amount)
                worst = min(m["per_class_delta"].items(), key=lambda kv: kv[1])
                print(f"{model.name:44s} {name:10s} mIoU {m['miou_raw']:6.2f} -> {m['miou_steady']:6.2f} "
                      f"({m['miou_steady'] - m['miou_raw']:+.2f}; most lost: {worst[0]} {worst[1]:+.2f}; "
                      f"without the flow {m['miou_steady_without_flow'] - m['miou_raw']:+.2f})", flush=True)
        rows.append(row)
    write_result(args, __doc__, rows, frames=len(ds), crop=CROP)
    return 0


if __name__ == "__main__":
    sys.exit(main())

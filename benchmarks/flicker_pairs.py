"""Which labels flicker: for each model, on one held-out clip of ``segrt data clips --role
flicker``, the share of pixels per frame pair that change label, split by the pair of classes
(A<->B, either direction), and each class's share of all pixels. A low flicker can be a model
that is steady because it is wrong the same way on every frame; this shows which.

    python3 benchmarks/flicker_pairs.py MODEL [MODEL ...] [--clip korea_expressway] [--warp] [--out FILE.json]

``--steady`` adds the same for the labels ``segrt run --steady`` writes (each pixel the median
of three frames in time), as the row's ``steady``.

Each row also has ``window_percent``: the flicker of each run of ``--window`` frame pairs in
turn (30: a second of video), which shows where in the clip a model flickers.

``--warp`` also splits the motion-compensated flicker (the previous labels moved along the
optical flow first, ``segrt.evaluation.evaluate.flicker``): what is left is a label that
changes on the same piece of the scene, not an edge the camera's motion moved.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def split(changed: np.ndarray, pixels: int, names: list[str], top: int = 8) -> dict:
    """The ``top`` class pairs (A<->B, either direction) by their share (%) of ``pixels``."""
    n, pixels = len(names), max(1, pixels)
    both = changed + changed.T
    upper = [(i, j) for i in range(n) for j in range(i + 1, n) if both[i, j]]
    upper.sort(key=lambda ij: -both[ij])
    return {f"{names[i]}<->{names[j]}": round(100 * both[i, j] / pixels, 3) for i, j in upper[:top]}


def top4(pairs: dict) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in list(pairs.items())[:4])


def windows(per_pair: list[float], size: int) -> list[float]:
    """The mean flicker (%) of each run of ``size`` frame pairs (the last one may be shorter)."""
    return [round(100 * float(np.mean(per_pair[i:i + size])), 2) for i in range(0, len(per_pair), size)]


def pairs_on(backend, frames, limit: int, warp: bool = False, window: int = 30, steady: bool = False) -> dict:
    from segrt.evaluation.evaluate import flicker

    names = list(backend.manifest.classes)
    f = flicker(backend, frames, limit, progress=False, pairs=True, warp=warp, steady=steady)
    changed, seen = f["changed"], f["seen"]
    row = {"frames": f["frames"], "flicker_percent": round(100 * changed.sum() / max(1, f["pixels"]), 3),
           "pairs_percent": split(changed, f["pixels"], names),
           "class_share_percent": {names[c]: round(100 * seen[c] / max(1, seen.sum()), 1)
                                   for c in np.argsort(-seen) if seen[c]},
           "window_percent": windows(f["per_pair"], window)}
    if warp:
        row["warped_flicker_percent"] = round(100 * f["changed_warped"].sum() / max(1, f["pixels_warped"]), 3)
        row["warped_pairs_percent"] = split(f["changed_warped"], f["pixels_warped"], names)
    return row


def refuse(message: str) -> None:
    """Bad input: one line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main() -> None:
    from segrt import envinfo
    from segrt.datasets import clips
    from segrt.evaluation.evaluate import frames_of
    from segrt.realtime.api import Segmenter
    from segrt.realtime.sources import open_source

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--clip", default="korea_expressway", help="a held-out clip's name [default: %(default)s]")
    ap.add_argument("--frames", type=int, default=300, help="frames from the start [default: %(default)s]")
    ap.add_argument("--warp", action="store_true", help="also the motion-compensated flicker, split by pair")
    ap.add_argument("--window", type=int, default=30, help="frame pairs per window of window_percent "
                                                             "[default: %(default)s]")
    ap.add_argument("--steady", action="store_true",
                    help="also the labels as 'segrt run --steady' writes them (the median of 3 frames in time)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.frames < 2:
        refuse(f"--frames {args.frames}: flicker needs at least 2 frames; use e.g. 300")
    if args.window < 1:
        refuse(f"--window {args.window}: a window holds at least 1 frame pair; use e.g. 30")
    held_out = {c.name: c for c in clips.load_clips() if c.role == "flicker"}
    if args.clip not in held_out:
        refuse(f"--clip {args.clip}: not a held-out clip; use one of {', '.join(held_out)}")
    path = clips.clip_file(clips.default_root(), held_out[args.clip])
    if not path.is_file():
        refuse(f"{path}: missing; run 'segrt data clips --role flicker' first")
    rows = []
    for model in args.models:
        with Segmenter(model, device="cpu") as seg:
            with open_source(str(path)) as src:
                row = {"model": model, **pairs_on(seg.backend, frames_of(src), args.frames, args.warp, args.window)}
            if args.steady:
                with open_source(str(path)) as src:
                    row["steady"] = pairs_on(seg.backend, frames_of(src), args.frames, args.warp, args.window, True)
        rows.append(row)
        share = ", ".join(f"{k} {v:.0f}" for k, v in list(row["class_share_percent"].items())[:5])
        print(f"{Path(model).name}: flicker {row['flicker_percent']:.2f} %  pairs: {top4(row['pairs_percent'])}"
              f"  |  pixels %: {share}")
        if args.steady:
            print(f"  --steady: flicker {row['steady']['flicker_percent']:.2f} %  "
                  f"pairs: {top4(row['steady']['pairs_percent'])}")
        if args.warp:
            print(f"  motion-compensated: {row['warped_flicker_percent']:.2f} %  "
                  f"pairs: {top4(row['warped_pairs_percent'])}")
    if args.out:
        args.out.write_text(json.dumps({"what": __doc__.split("\n\n")[0].replace("\n", " "), "clip": args.clip,
                                        "command": "flicker_pairs.py " + " ".join(sys.argv[1:]),
                                        "models": rows, "machine": envinfo.machine(),
                                        "versions": envinfo.versions()}, indent=1) + "\n")


if __name__ == "__main__":
    main()

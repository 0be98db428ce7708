"""What ``segrt run --steady`` costs a frame, in CPU milliseconds, apart from everything else:
the filter (``segrt.realtime.steady.TemporalMedian``) fed a model's label maps of a clip's
frames, timed as a whole and by its parts (the grey frame for the flow, DIS flow, moving the
two neighbours' labels, the median).

    python3 benchmarks/steady_cost.py CLIP [--model NAME] [--frames 100] [--blocks 7] [--out FILE.json]

The labels come from the model once, before any timing; each block then pushes every frame
through a fresh filter. Reported: the median over blocks of the milliseconds a frame, with
OpenCV on one thread (as ``segrt run`` leaves it to share the cores with the model). End to
end, ``benchmarks/demo_ab.py`` with ``--setting "steady=--steady"`` shows what that does to
FPS, where the filter competes with the model for the same cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def read_frames(clip: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def per_frame_ms(fn, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n * 1e3


def time_parts(frames: list[np.ndarray], labels: list[np.ndarray], keep: np.ndarray, blocks: int) -> dict:
    """Median over ``blocks`` of ms a frame: the whole filter and each part."""
    from segrt.realtime.steady import TemporalMedian, median3, small_gray, warp_back

    n = len(frames) - 2
    grays = [small_gray(f) for f in frames]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    flows = [dis.calc(grays[i + 1], grays[i], None) for i in range(n + 1)]
    parts = {
        "filter": lambda: per_frame_ms(lambda i: median.push(labels[i], i, frames[i]), n),
        "grey_frame": lambda: per_frame_ms(lambda i: small_gray(frames[i]), n),
        "flow": lambda: per_frame_ms(lambda i: dis.calc(grays[i + 1], grays[i], None), n),
        "move_neighbours": lambda: per_frame_ms(lambda i: (warp_back(labels[i], flows[i], inside=False),
                                                           warp_back(labels[i + 2], -flows[i + 1], inside=False)), n),
        "median": lambda: per_frame_ms(lambda i: median3(labels[i], labels[i + 1], labels[i + 2], keep), n),
    }
    runs: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(blocks):
        for name, run in parts.items():  # interleaved, so a slow spell hits every part alike
            median = TemporalMedian(keep)
            runs[name].append(run())
    return {k: round(statistics.median(v), 3) for k, v in runs.items()} | {
        "filter_blocks": [round(v, 3) for v in runs["filter"]]}


def main() -> int:
    from segrt import envinfo
    from segrt.files import write_text_atomic
    from segrt.realtime.api import Segmenter
    from segrt.realtime.steady import movers

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--model", default=None, help="zoo name or .onnx [default: the CPU default]")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.frames < 3 or args.blocks < 1:
        print("error: --frames takes 3 or more and --blocks 1 or more", file=sys.stderr)
        return 2
    frames = read_frames(args.clip, args.frames)
    if len(frames) < 3:
        print(f"error: {args.clip}: fewer than 3 frames could be read; pass a video clip", file=sys.stderr)
        return 2
    with Segmenter(args.model, threads=2) as seg:
        from segrt.preprocess import Preprocessor

        backend = seg.backend
        prep, x = Preprocessor(backend.manifest.preprocess), backend.input_buffer(1)
        labels = []
        for frame in frames:
            prep(frame, out=x[0])
            labels.append(backend.infer(x)[0].copy())
        keep, model = movers(backend.manifest.classes), Path(seg.path).name
    cv2.setNumThreads(1)
    result = time_parts(frames, labels, keep, args.blocks)
    h, w = labels[0].shape
    print(f"{model}: labels {w}x{h}, frames {frames[0].shape[1]}x{frames[0].shape[0]}: "
          + ", ".join(f"{k} {v:.2f} ms" for k, v in result.items() if k != "filter_blocks"))
    if args.out:
        doc = {"what": __doc__.split("\n\n")[0].replace("\n", " "), "clip": args.clip.name, "model": model,
               "labels_wh": [w, h], "frames": len(frames), "blocks": args.blocks, "ms_per_frame": result,
               **envinfo.provenance()}
        write_text_atomic(args.out, json.dumps(doc, indent=2) + "\n", "result")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

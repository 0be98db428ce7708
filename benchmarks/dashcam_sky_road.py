"""What each model calls the sky and the road on the dashcam clip, a sunny US highway that
CamVid (overcast Cambridge streets) never showed it: the measure behind
``test_shipped_model_sees_road_below_and_sky_above_on_the_dashcam``, on more frames.

    python3 benchmarks/dashcam_sky_road.py [MODEL.onnx ...] [--video CLIP] [--out FILE.json]
        [--sheet FILE.png]

Per model and frame: the share of the top 15 % of rows called Sky (and Building, the usual
mistake), and of the bottom-centre block called Road, as in the test (which uses frame 30 and
asks for more than 50 % and 60 %). Models default to every ONNX file in ``segrt/zoo``.
``--sheet`` writes the frame and each model's colourised labels side by side, to look at.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FRAMES = (30, 80, 120, 200)  # 1-based, as the test counts: its frame is the 30th read


def read_frames(video: Path, wanted: tuple[int, ...]) -> dict[int, np.ndarray]:
    import cv2

    cap, frames, n = cv2.VideoCapture(str(video)), {}, 0
    while n < max(wanted):
        ok, frame = cap.read()
        if not ok:
            raise SystemExit(f"error: {video}: ends at frame {n}, before frame {max(wanted)}; pass a longer clip")
        n += 1
        if n in wanted:
            frames[n] = frame
    return frames


def main() -> None:
    import cv2

    from segrt import envinfo
    from segrt.datasets.fetch import demo_video
    from segrt.engines.base import open_backend
    from segrt.evaluation.evaluate import sky_road_shares
    from segrt.files import write_text_atomic
    from segrt.preprocess import Preprocessor
    from segrt.realtime.overlay import bgr_lut, colorize

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--video", type=Path, help="[default: the demo clip, $SEGRT_DEMO_VIDEO or its cached download]")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--sheet", type=Path)
    args = ap.parse_args()
    models = args.models or sorted((REPO / "segrt" / "zoo").glob("*.onnx"))
    video = args.video or demo_video()
    frames = read_frames(video, FRAMES)
    rows, tiles = [], []
    for model in models:
        with open_backend(model) as net:
            classes, lut = net.manifest.classes, bgr_lut(net.manifest.palette)
            row = {"model": model.name, "frames": {}}
            strip = []
            for n, frame in frames.items():
                x = net.input_buffer()
                Preprocessor(net.manifest.preprocess)(frame, out=x[0])
                labels = net.infer(x)[0]
                row["frames"][n] = {k: round(v, 3) for k, v in sky_road_shares(labels, classes).items()}
                strip.append(cv2.resize(colorize(labels, lut), (320, 180), interpolation=cv2.INTER_NEAREST))
        rows.append(row)
        tiles.append(np.hstack(strip))
        cells = "  ".join(f"{n}: sky {s['top_sky']:.2f} road {s['bottom_road']:.2f}" for n, s in row["frames"].items())
        print(f"{model.name:42s} {cells}")
    if args.sheet:
        head = np.hstack([cv2.resize(f, (320, 180)) for f in frames.values()])
        cv2.imwrite(str(args.sheet), np.vstack([head, *tiles]))
    if args.out:
        doc = {"what": "share of the top 15 % of rows called Sky / Building, and of the bottom-centre block "
                       "called Road, per dashcam frame (1-based)", "video": video.name, "models": rows,
               **envinfo.provenance()}
        write_text_atomic(args.out, json.dumps(doc, indent=2) + "\n", "result")


if __name__ == "__main__":
    main()

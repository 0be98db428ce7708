"""The out-of-domain dev check: how models trained on CamVid (one town, one camera) do on road
frames of other datasets and countries, beside their CamVid val figure.

    segrt data roads            # once: the labeled frames, into the cache
    segrt data clips --role flicker   # once, for --flicker
    python3 benchmarks/devcheck.py [MODEL ...] [--root ROOT] [--camvid DIR] [--flicker] [--out FILE.json]

Each set of ``segrt data roads`` is scored with its class map (IDD-Lite in IDD's 7 level-1
classes, KITTI + Cityscapes in CamVid's 11); the dev-check figure is the mean of the sets'
mIoU, so each country counts once. Models default to every ONNX file in ``segrt/zoo``;
``.pt`` checkpoints run through torch at their trained size. CamVid val comes from --camvid,
else $SEGRT_CAMVID, else the cache of ``segrt data camvid``; CamVid test is never read.
``--flicker`` adds the label-free check on the three held-out clips of other countries: the
share of pixels whose label changes from one frame to the next (lower is steadier).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def score(backend, ds, class_map) -> dict:
    from segrt.datasets import classmap
    from segrt.evaluation.evaluate import evaluate_backend

    net, scored = classmap.apply(class_map, backend, ds)
    m = evaluate_backend(net, scored, progress=False)
    return {"miou": round(100 * m["miou"], 2), "pixel_accuracy": round(100 * m["pixel_accuracy"], 2),
            "frames": m["frames"], "per_class_iou": {c: round(100 * v, 1) for c, v in
                                                     zip(m["classes"], m["per_class_iou"], strict=True)}}


def flicker_on_clips(backend, limit: int = 300) -> dict:
    """Mean flicker (%) on each held-out clip of ``segrt data clips --role flicker``."""
    from segrt.datasets import clips
    from segrt.evaluation.evaluate import flicker, frames_of
    from segrt.realtime.sources import open_source

    out = {}
    for clip in (c for c in clips.load_clips() if c.role == "flicker"):
        path = clips.clip_file(clips.default_root(), clip)
        if not path.is_file():
            raise SystemExit(f"error: {path}: missing; run 'segrt data clips --role flicker' first")
        with open_source(str(path)) as src:
            out[clip.name] = round(100 * flicker(backend, frames_of(src), limit, progress=False)["mean"], 2)
    return out


def main() -> None:
    from segrt import envinfo
    from segrt.datasets import open_dataset, roads
    from segrt.datasets.classmap import load_class_map
    from segrt.datasets.roads import load_sources
    from segrt.files import write_text_atomic
    from segrt.realtime.api import Segmenter

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--root", type=Path, default=None, help="[default: where 'segrt data roads' put the sets]")
    ap.add_argument("--camvid", type=Path, default=None)
    ap.add_argument("--no-val", action="store_true", help="skip CamVid val")
    ap.add_argument("--flicker", action="store_true", help="flicker on the held-out clips of other countries")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    root = args.root or roads.default_root()
    camvid = args.camvid or (Path(os.environ["SEGRT_CAMVID"]) if os.environ.get("SEGRT_CAMVID") else None)
    sets = load_sources().sets
    missing = [name for name in sets if not (root / name / "dataset.yaml").is_file()]
    if missing:
        raise SystemExit(f"error: {root}: no {', '.join(missing)}; run 'segrt data roads' first")
    data = {name: (open_dataset("folder", root / name, "val"), load_class_map(spec.class_map))
            for name, spec in sets.items()}
    val = None if args.no_val else open_dataset("camvid", camvid, "val")
    models = args.models or sorted((REPO / "segrt" / "zoo").glob("*.onnx"))
    rows = []
    print(f"{'model':44s}{'CamVid val':>11}" + "".join(f"{n:>18}" for n in data) + f"{'dev check':>11}")
    for model in models:
        with Segmenter(model, threads=args.threads) as seg:
            row = {"model": model.name, "sets": {name: score(seg.backend, ds, cm) for name, (ds, cm) in data.items()}}
            if val is not None:
                row["camvid_val"] = score(seg.backend, val, None)
            if args.flicker:
                row["flicker"] = flicker_on_clips(seg.backend)
        row["dev_check_miou"] = round(sum(s["miou"] for s in row["sets"].values()) / len(row["sets"]), 2)
        rows.append(row)
        v = f"{row['camvid_val']['miou']:>11.2f}" if val is not None else f"{'-':>11}"
        print(f"{model.name:44s}{v}" + "".join(f"{s['miou']:>18.2f}" for s in row["sets"].values())
              + f"{row['dev_check_miou']:>11.2f}"
              + ("  flicker % " + ", ".join(f"{k} {v}" for k, v in row["flicker"].items()) if args.flicker else ""))
    if args.out:
        doc = {"what": "mIoU (%) on the out-of-domain dev check (segrt data roads; each set scored with its class "
                       "map) and on CamVid val; dev_check_miou is the mean over the sets",
               "sets": {n: {"frames": len(ds), "class_map": cm.source, "description": sets[n].description}
                        for n, (ds, cm) in data.items()},
               "command": "python3 benchmarks/devcheck.py " + " ".join(str(m) for m in args.models),
               "models": rows, **envinfo.provenance()}
        write_text_atomic(args.out, json.dumps(doc, indent=2) + "\n", "result")


if __name__ == "__main__":
    main()

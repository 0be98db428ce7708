"""End-to-end A/B of ``segrt run`` settings on one clip: runs alternate, so a slow spell on a
shared machine hits every setting alike.

    python3 benchmarks/demo_ab.py CLIP --setting "before=--workers 1 -m old.int8.onnx" \\
        --setting "after=" --runs 5 --no-save-too --out benchmarks/results/x.json

Each run is ``segrt run CLIP -o TMP.mp4 --report TMP.json --no-progress SETTING`` in a fresh
process (with ``--no-save-too``, also the same without writing). The JSON has every run's FPS,
the model's rate in the run, the stage means, the backend's workers and threads, the median per
setting, the model file's SHA-256, and the machine, versions and command.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from segrt import envinfo
from segrt.files import write_text_atomic


def one_run(clip: Path, extra: list[str], save: bool, tmp: Path) -> dict:
    report = tmp / "report.json"
    out = tmp / "overlay.mp4"
    for p in (report, out):
        p.unlink(missing_ok=True)
    args = [sys.executable, "-m", "segrt", "run", str(clip), "--report", str(report), "--no-progress", *extra,
            *(["-o", str(out)] if save else ["--no-save"])]
    subprocess.run(args, check=True, capture_output=True)
    doc = json.loads(report.read_text())
    return {"fps": doc["fps"], "model_fps": doc["model_fps"], "workers": doc["backend"].get("workers", 1),
            "threads": doc["backend"]["threads"], "model": doc["model"]["path"], "model_sha256": doc["model"]["sha256"],
            "stages_mean_ms": {k: v["mean_ms"] for k, v in doc["stages"].items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--setting", action="append", required=True, metavar="NAME=ARGS",
                    help="a name and the segrt run options it adds (may be empty); repeat")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-save-too", action="store_true", help="also time each setting with --no-save")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    settings = {}
    for item in args.setting:
        name, sep, extra = item.partition("=")
        if not sep or not name:
            ap.error(f"--setting {item!r}: write NAME=OPTIONS")
        settings[name] = shlex.split(extra)
    modes = ["save", "no_save"] if args.no_save_too else ["save"]
    runs: dict[str, dict[str, list[dict]]] = {n: {m: [] for m in modes} for n in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for name, extra in settings.items():
                for mode in modes:
                    r = one_run(args.clip, extra, mode == "save", Path(tmp))
                    runs[name][mode].append(r)
                    print(f"run {i + 1}/{args.runs} {name:>12} {mode:>7}: {r['fps']:6.1f} FPS end to end, model "
                          f"{r['model_fps']:6.1f} FPS, {r['workers']} worker(s) x {r['threads']} thread(s)",
                          flush=True)
    medians = {n: {m: round(statistics.median(r["fps"] for r in rs), 1) for m, rs in by.items()}
               for n, by in runs.items()}
    for n, by in medians.items():
        print(f"{n}: median " + ", ".join(f"{m} {v} FPS" for m, v in by.items()))
    if args.out:
        doc = {"clip": str(args.clip), "settings": {n: shlex.join(e) for n, e in settings.items()},
               "median_fps": medians, "runs": runs, **envinfo.provenance()}
        write_text_atomic(args.out, json.dumps(doc, indent=1) + "\n", "results")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""How many cameras does this machine hold? N copies of a clip as N live-paced streams.

    python3 benchmarks/streams.py CLIP --model A.onnx [--model B.onnx ...] [--max-streams 6]
        [--fps 30] [--out benchmarks/results/streams_cpu.json] [--plot FILE.png]

For each model and N = 1 .. --max-streams, one fresh ``segrt run CLIP ×N --realtime-fps FPS
--no-save`` (the clip replayed at FPS on every stream, frames dropped as a camera's would be
when the pipeline falls behind; --max-batch N, so a dynamic-batch model batches across the
streams and a fixed-batch one takes them in turn). Per run: aggregate output FPS, frames
dropped, frame age (capture → written) p95 and max, mean batch. A model "holds" N streams when
nothing was dropped and the p95 frame age stayed under --max-age-ms (default 200). Prints a
Markdown table; writes JSON with the machine, versions and command, and a plot of aggregate
FPS against N.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path


def run_streams(clip: Path, model: Path, n: int, fps: float, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "r.json"
        cmd = [sys.executable, "-m", "segrt", "run", *[str(clip)] * n, "--model", str(model), "--realtime-fps",
               str(fps), "--no-save", "--max-batch", str(n), "--report", str(report), "--no-progress"]
        if threads:
            cmd += ["--threads", str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            return {"streams": n, "error": proc.stderr.strip().splitlines()[-1][:300]}
        doc = json.loads(report.read_text())
    batching = doc.get("batching") or {"mean": 1.0, "largest": 1}
    return {"streams": n, "fps": doc["fps"], "fps_per_stream": [s["fps"] for s in doc["streams"]],
            "frames_out": doc["frames_out"], "captured": doc["captured"], "dropped": doc["dropped"],
            "age_p95_ms": doc["frame_age_ms"]["p95"], "age_max_ms": doc["frame_age_ms"]["max"],
            "infer_mean_ms": doc["stages"]["infer"]["mean_ms"], "batch_mean": batching["mean"],
            "batch_largest": batching["largest"]}


def holds(row: dict, max_age_ms: float) -> bool:
    return "error" not in row and row["dropped"] == 0 and row["age_p95_ms"] < max_age_ms


def plot(results: dict, fps: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from segrt.files import save_figure

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, rows in results.items():
        ok = [r for r in rows if "error" not in r]
        ax.plot([r["streams"] for r in ok], [r["fps"] for r in ok], marker="o", label=name)
    top = max((r["streams"] for rows in results.values() for r in rows), default=1)
    ax.plot([1, top], [fps, fps * top], "k--", lw=1, label=f"every frame of {fps:g} FPS streams")
    ax.set_xlabel("streams (copies of the clip, each replayed live)")
    ax.set_ylabel("frames written per second, all streams")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--model", action="append", type=Path, required=True)
    ap.add_argument("--label", action="append", default=None, help="A name per --model for the table and plot.")
    ap.add_argument("--max-streams", type=int, default=6)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--max-age-ms", type=float, default=200.0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    labels = args.label or [m.stem for m in args.model]
    if len(labels) != len(args.model):
        ap.error("give one --label per --model")
    results: dict[str, list[dict]] = {}
    for label, model in zip(labels, args.model, strict=True):
        rows = results.setdefault(label, [])
        for n in range(1, args.max_streams + 1):
            rows.append(run_streams(args.clip, model, n, args.fps, args.threads))
            print(f"{label} x{n}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    print("| model | streams | FPS (all) | dropped | frame age p95 / max (ms) | mean batch | holds |")
    print("|---|---|---|---|---|---|---|")
    for label, rows in results.items():
        for r in rows:
            if "error" in r:
                print(f"| {label} | {r['streams']} | error: {r['error']} | | | | |")
                continue
            print(f"| {label} | {r['streams']} | {r['fps']:.1f} | {r['dropped']} | {r['age_p95_ms']:.0f} / "
                  f"{r['age_max_ms']:.0f} | {r['batch_mean']:.2f} | {'yes' if holds(r, args.max_age_ms) else 'no'} |")
    most = {label: max((r["streams"] for r in rows if holds(r, args.max_age_ms)), default=0)
            for label, rows in results.items()}
    for label, n in most.items():
        print(f"{label}: holds {n} streams of {args.fps:g} FPS (no drops, frame age p95 < {args.max_age_ms:g} ms)")
    if args.plot:
        plot(results, args.fps, args.plot)
    if args.out:
        from segrt import envinfo
        from segrt.files import write_text_atomic

        doc = {"what": "N copies of the clip as N live-paced streams in one segrt run; the most streams each "
                       "model holds with no drops and frame age p95 under the limit",
               "command": shlex.join([Path(sys.executable).name, *sys.argv]), "clip": str(args.clip),
               "fps": args.fps, "max_age_ms": args.max_age_ms, "models": {lab: str(m) for lab, m in
                                                                          zip(labels, args.model, strict=True)},
               "holds": most, "results": results, "machine": envinfo.machine(), "versions": envinfo.versions()}
        write_text_atomic(args.out, json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()

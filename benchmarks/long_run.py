"""Soak test: loop the dashcam clip for N frames through ``segrt run`` and sample its memory.

    python3 benchmarks/long_run.py [--frames 10000] [--out benchmarks/results/long_run_cpu.json]

The run is a child process (the real CLI, default model, ONNX Runtime on CPU, mp4 output);
its resident set size is read from /proc every half second. After warm-up (the first 10% of
the run's time), RSS must grow less than 5% to the end, and frames in must equal frames out.
Exit code 1 when either fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "videos" / "highway_dashcam_960x540.mp4"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main(argv: list[str] | None = None) -> int:
    from segrt import envinfo

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "long_run_cpu.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        report, video = Path(d) / "run.json", Path(d) / "soak.mp4"
        cmd = [sys.executable, "-m", "segrt", "run", str(args.clip), "--loop", "--max-frames", str(args.frames),
               "-o", str(video), "--report", str(report), "--no-progress"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples = []
        while proc.poll() is None:
            r = rss_mb(proc.pid)
            if r is not None:
                samples.append((round(time.perf_counter() - t0, 2), round(r, 1)))
            time.sleep(args.interval)
        out, err = proc.communicate()
        if proc.returncode != 0:
            print(err, file=sys.stderr)
            return 1
        run = json.loads(report.read_text())
        video_mb = video.stat().st_size / 1e6
    wall = samples[-1][0] if samples else 0.0
    warm = [r for t, r in samples if t >= 0.1 * wall]
    start, end = warm[0], warm[-1]
    peak = max(r for _, r in samples)
    growth = 100.0 * (end - start) / start
    ok = growth < 5.0 and run["frames_in"] == run["frames_out"] == args.frames
    doc = {"ok": ok, "frames": args.frames, "frames_in": run["frames_in"], "frames_out": run["frames_out"],
           "dropped": run["dropped"], "fps": run["fps"], "wall_s": run["wall_s"],
           "rss_mb": {"after_warmup": start, "end": end, "peak": peak, "growth_pct": round(growth, 2)},
           "warmup_rule": "first 10% of the run's wall time excluded", "video_mb": round(video_mb, 1),
           "samples": samples, "stages": run["stages"], "machine": envinfo.machine(), "versions": envinfo.versions(),
           "command": " ".join(["python3", "benchmarks/long_run.py", *(argv or sys.argv[1:])]),
           "run_command": " ".join(["segrt", *cmd[3:]])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from segrt.files import write_text_atomic

    write_text_atomic(args.out, json.dumps(doc, indent=2) + "\n", "results")
    print(f"{run['frames_in']} frames in, {run['frames_out']} out, {run['fps']:.1f} FPS; RSS after warm-up "
          f"{start:.1f} MB, end {end:.1f} MB ({growth:+.2f}%), peak {peak:.1f} MB → {'OK' if ok else 'FAIL'}")
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

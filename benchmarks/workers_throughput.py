"""Model calls a second: one call at a time on every core, against several calls at once on
one thread each (what ``segrt run --workers`` does), model alone, in one process.

    python3 benchmarks/workers_throughput.py MODEL.onnx [--workers 2] [--out FILE.json]

Both settings use segrt's ONNX Runtime backend (``threads = cores`` for the first, ``threads =
cores // workers`` shared by ``workers`` threads for the second) on 8 real dashcam
frames spread over the clip, preprocessed, alternating in ``--rounds`` rounds of ``--calls``
calls, so a slow spell hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

import numpy as np

from segrt import envinfo
from segrt.files import write_text_atomic


def frames(model_manifest, n: int = 8) -> list[np.ndarray]:
    """``n`` frames spread over the demo clip, preprocessed for the model: (1, 3, h, w) each."""
    from segrt.calibration.frames import video_frames
    from segrt.datasets.fetch import demo_video
    from segrt.preprocess import Preprocessor

    prep = Preprocessor(model_manifest.preprocess)
    return [prep(frame)[None] for frame in video_frames(demo_video(), n)]


def calls_per_second(net, inputs: list[np.ndarray], calls: int, workers: int) -> float:
    def work(k: int) -> None:
        for i in range(k, calls, workers):
            net.infer(inputs[i % len(inputs)])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return calls / (time.perf_counter() - t0)


def main() -> None:
    from segrt.engines.base import open_backend

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    with open_backend(args.model, threads=cores) as one, \
            open_backend(args.model, threads=max(1, cores // args.workers)) as many:
        inputs = frames(one.manifest)
        for net in (one, many):
            calls_per_second(net, inputs, 20, 1)  # warm-up
        rates: dict[str, list[float]] = {"one_call": [], "concurrent": []}
        for _ in range(args.rounds):
            rates["one_call"].append(calls_per_second(one, inputs, args.calls, 1))
            rates["concurrent"].append(calls_per_second(many, inputs, args.calls, args.workers))
    med = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    print(f"one call at a time on {cores} threads: {med['one_call']} calls/s; {args.workers} calls at once on "
          f"{max(1, cores // args.workers)} thread(s) each: {med['concurrent']} calls/s "
          f"({med['concurrent'] / med['one_call']:.2f}x)")
    if args.out:
        doc = {"model": str(args.model), "cores": cores, "workers": args.workers,
               "threads": {"one_call": cores, "concurrent": max(1, cores // args.workers)},
               "median_calls_per_s": med, "rounds_calls_per_s": {k: [round(x, 1) for x in v] for k, v in rates.items()},
               **envinfo.provenance()}
        write_text_atomic(args.out, json.dumps(doc, indent=1) + "\n", "results")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""INT8 against FP32 on ONNX Runtime: interleaved A/B latency, with the accuracy gate's verdict.

    python3 benchmarks/int8_speedup.py MODEL.onnx [MODEL.onnx ...] [--out FILE.json]

For each FP32 MODEL.onnx, its INT8 sibling MODEL.int8.onnx (from ``segrt quantize
--precision int8``) must lie beside it. Both sessions stay open and are timed in alternating
blocks (``--blocks`` of ``--per-block`` calls each, after warm-up), so a slow spell on a shared
machine hits both alike instead of whichever happened to run then. Per model: the median of
the block medians and the fastest block median, in ms, and their FP32/INT8 ratios; the val
mIoU of both as the INT8 file's manifest recorded it (``segrt quantize`` scored them on
CamVid val). Prints a Markdown table; ``--out`` writes it as JSON with the machine, the
versions and the command. Exit code 1 when a model's INT8 sibling is missing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np


def int8_sibling(fp32: Path) -> Path:
    return fp32.with_name(fp32.stem + ".int8.onnx")


def block_medians(backends: list, blocks: int, per_block: int, warmup: int) -> list[list[float]]:
    """Per backend, the median call time (ms) of each block; blocks alternate between backends."""
    from segrt.evaluation.latency import timing_input

    inputs = [timing_input(b) for b in backends]
    for b, x in zip(backends, inputs, strict=True):
        for _ in range(warmup):
            b.infer(x)
    medians: list[list[float]] = [[] for _ in backends]
    times = np.empty(per_block)
    for _ in range(blocks):
        for k, (b, x) in enumerate(zip(backends, inputs, strict=True)):
            for i in range(per_block):
                t0 = time.perf_counter()
                b.infer(x)
                times[i] = time.perf_counter() - t0
            medians[k].append(1000.0 * float(np.median(times)))
    return medians


def gate_of(int8: Path) -> dict:
    """The accuracy gate's verdict recorded in the INT8 file's manifest (or {} if none)."""
    manifest = int8.with_suffix(".json")
    if not manifest.is_file():
        return {}
    gate = json.loads(manifest.read_text()).get("quantization", {}).get("gate", {})
    return {k: gate.get(k) for k in ("reference_miou", "miou", "delta_points", "passed")}


def measure(fp32: Path, threads: int, blocks: int, per_block: int, warmup: int) -> dict:
    from segrt.engines.base import open_backend

    int8 = int8_sibling(fp32)
    with open_backend(fp32, threads=threads) as a, open_backend(int8, threads=threads) as b:
        ma, mb = block_medians([a, b], blocks, per_block, warmup)
    med = {"fp32": float(np.median(ma)), "int8": float(np.median(mb))}
    best = {"fp32": min(ma), "int8": min(mb)}
    return {"model": fp32.name, "int8_model": int8.name,
            "median_ms": {k: round(v, 3) for k, v in med.items()},
            "best_block_ms": {k: round(v, 3) for k, v in best.items()},
            "speedup_median": round(med["fp32"] / med["int8"], 3),
            "speedup_best": round(best["fp32"] / best["int8"], 3),
            "block_medians_ms": {"fp32": [round(v, 3) for v in ma], "int8": [round(v, 3) for v in mb]},
            "gate": gate_of(int8)}


def markdown(rows: list[dict]) -> str:
    lines = ["| model | FP32 ms | INT8 ms | INT8 speed-up | best blocks | FP32 mIoU | INT8 mIoU | Δ points |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        g = r["gate"]
        miou = [f"{100 * g[k]:.2f}" if g.get(k) is not None else "–" for k in ("reference_miou", "miou")]
        delta = f"{g['delta_points']:+.2f}" if g.get("delta_points") is not None else "–"
        lines.append(f"| {r['model']} | {r['median_ms']['fp32']:.2f} | {r['median_ms']['int8']:.2f} | "
                     f"**{r['speedup_median']:.2f}x** | {r['speedup_best']:.2f}x | {miou[0]} | {miou[1]} | {delta} |")
    return "\n".join(lines)


def timing_arguments(ap: argparse.ArgumentParser) -> None:
    """The options every interleaved-timing script takes (threads, blocks, warm-up, --out)."""
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads [2]")
    ap.add_argument("--blocks", type=int, default=15, help="alternating blocks per model [15]")
    ap.add_argument("--per-block", type=int, default=20, help="timed calls per block [20]")
    ap.add_argument("--warmup", type=int, default=20, help="untimed calls per session first [20]")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")


def main(argv: list[str] | None = None) -> int:
    from segrt import envinfo

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="FP32 .onnx files, each with MODEL.int8.onnx beside it")
    timing_arguments(ap)
    args = ap.parse_args(argv)
    missing = [m for m in args.models if not m.is_file() or not int8_sibling(m).is_file()]
    if missing:
        for m in missing:
            print(f"{m}: need it and {int8_sibling(m).name} beside it "
                  f"(make that with: segrt quantize {m} --precision int8)", file=sys.stderr)
        return 1
    rows = []
    for m in args.models:
        rows.append(measure(m, args.threads, args.blocks, args.per_block, args.warmup))
        r = rows[-1]
        print(f"{r['model']}: FP32 {r['median_ms']['fp32']:.2f} ms, INT8 {r['median_ms']['int8']:.2f} ms, "
              f"{r['speedup_median']:.2f}x", flush=True)
    table = markdown(rows)
    print(table)
    if args.out:
        doc = {"what": "FP32 vs INT8 (ONNX Runtime QDQ) latency, batch 1, interleaved blocks; mIoU from the "
                       "accuracy gate (CamVid val)",
               "command": "python3 benchmarks/int8_speedup.py " + " ".join(shlex.quote(a) for a in
                                                                       (argv if argv is not None else sys.argv[1:])),
               "threads": args.threads, "blocks": args.blocks, "per_block": args.per_block, "warmup": args.warmup,
               "rows": rows, "markdown": table, "machine": envinfo.machine(), "versions": envinfo.versions()}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        from segrt.files import write_text_atomic

        write_text_atomic(args.out, json.dumps(doc, indent=2) + "\n", "results")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Interleaved latency of several ONNX models against a reference, in one process.

    python3 benchmarks/ab_latency.py REFERENCE.onnx MODEL.onnx [MODEL.onnx ...] [--out FILE.json]

Every session stays open; they are timed in alternating blocks (``--blocks`` of
``--per-block`` calls each, after warm-up), so a slow spell on a shared machine hits all of
them alike. Per model: the median of its block medians (ms), the fastest block median, and
the ratio to the first model (the reference) of both, and the paired ratio: the median over
blocks of each block's ratio to the reference's block just before it, which a VM whose speed
drifts over minutes disturbs least. Sessions are segrt's ONNX Runtime backend, as ``segrt run``
opens them.
Prints a Markdown table; ``--out`` writes it as JSON with the machine, the versions and the command.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from int8_speedup import block_medians, timing_arguments  # noqa: E402


def paired_ratio(reference: list[float], other: list[float]) -> float:
    """The median over blocks of ``other[i] / reference[i]``: blocks i ran back to back."""
    return float(np.median(np.asarray(other) / np.asarray(reference)))


def measure(models: list[Path], threads: int, blocks: int, per_block: int, warmup: int) -> list[dict]:
    from contextlib import ExitStack

    from segrt.engines.base import open_backend

    with ExitStack() as stack:
        backends = [stack.enter_context(open_backend(m, threads=threads))
                    for m in models]
        medians = block_medians(backends, blocks, per_block, warmup)
    ref_med, ref_best = float(np.median(medians[0])), min(medians[0])
    rows = []
    for m, ms in zip(models, medians, strict=True):
        med, best = float(np.median(ms)), min(ms)
        rows.append({"model": m.name, "path": str(m), "median_ms": round(med, 3), "best_block_ms": round(best, 3),
                     "ratio_median": round(med / ref_med, 3), "ratio_best": round(best / ref_best, 3),
                     "ratio_paired": round(paired_ratio(medians[0], ms), 3),
                     "block_medians_ms": [round(v, 3) for v in ms]})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [f"| model | ms (median of blocks) | × {rows[0]['model']} | best block ms | × (best) | × (paired) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['median_ms']:.2f} | **{r['ratio_median']:.2f}x** | "
                     f"{r['best_block_ms']:.2f} | {r['ratio_best']:.2f}x | {r['ratio_paired']:.3f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from segrt import envinfo

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="the reference .onnx first, then the others")
    timing_arguments(ap)
    args = ap.parse_args(argv)
    missing = [m for m in args.models if not m.is_file()]
    if missing or len(args.models) < 2:
        print(f"need a reference and at least one model; missing: {', '.join(map(str, missing)) or 'none'}",
              file=sys.stderr)
        return 2
    rows = measure(args.models, args.threads, args.blocks, args.per_block, args.warmup)
    table = markdown(rows)
    print(table)
    if args.out:
        from segrt.files import write_text_atomic

        doc = {"what": "model-only latency, batch 1, ONNX Runtime CPU, interleaved blocks in one process",
               "command": "python3 benchmarks/ab_latency.py " + " ".join(shlex.quote(a) for a in
                                                                      (argv if argv is not None else sys.argv[1:])),
               "threads": args.threads, "blocks": args.blocks, "per_block": args.per_block, "warmup": args.warmup,
               "rows": rows, "markdown": table,
               "machine": envinfo.machine(), "versions": envinfo.versions()}
        write_text_atomic(args.out, json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``segrt bench``: speed and accuracy of every model file, measured the same way, side by side.

Each model runs in its own fresh process (so peak memory and load time are its own, and one
backend's state never leaks into the next):

- load time (session creation, engine deserialization, checkpoint load);
- model-only latency after warm-up at batch 1 and at a chosen batch: mean, p50, p95, p99;
- pipeline FPS of the real loop on a video, with its per-stage breakdown;
- mIoU on a dataset split;
- peak host memory (and device memory where the backend reports it), file size.

Results carry the machine (CPU, cores, GPU, driver, compute capability, Jetson power mode),
library versions, thread settings and input size, and are written as JSON, CSV and Markdown,
plus a PNG of FPS against mIoU.
"""

from __future__ import annotations

import concurrent.futures
import csv
import json
import multiprocessing
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from segrt.engines.remote import model_name
from segrt.errors import DataError, SegrtError, first_line
from segrt.evaluation.latency import measure_latency
from segrt.files import atomic_output, save_figure, write_text_atomic

SORT_KEYS = {"fps": ("pipeline_fps", True), "latency": ("p50_ms", False), "miou": ("miou", True),
             "name": ("model", False)}


@dataclass(frozen=True)
class BenchOptions:
    video: str | None = None
    pipeline_frames: int = 300
    dataset: str = "camvid"
    split: str = "val"
    data_root: str | None = None
    eval_frames: int | None = None
    batch: int = 4
    runs: int = 100
    warmup: int = 20
    threads: int = 0
    device: str = "cpu"


def _device_memory(backend) -> int | None:
    if getattr(backend, "name", "") == "torch" and getattr(backend, "device", "cpu") == "cuda":
        torch = sys.modules["torch"]  # loaded by the torch backend; the runtime never imports it itself
        return int(torch.cuda.max_memory_allocated())
    return None


def bench_model(path: str, opts: BenchOptions) -> dict:
    """One model, measured in the calling process (``run_bench`` gives each a fresh one)."""
    from segrt.datasets import open_dataset, subset
    from segrt.engines.remote import is_remote
    from segrt.evaluation.evaluate import evaluate_backend
    from segrt.realtime.api import Segmenter

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    seg = Segmenter(path, device=opts.device, threads=opts.threads)
    backend = seg.backend
    try:
        load_s = time.perf_counter() - t0
        m = backend.manifest
        row: dict = {"model": model_name(path), "path": str(path), "backend": backend.name,
                     "architecture": m.architecture, "precision": m.precision,
                     "input": [m.preprocess.width, m.preprocess.height],
                     "file_mb": None if is_remote(path) else round(Path(path).stat().st_size / 1e6, 3),
                     "load_s": round(load_s, 3),
                     "threads": opts.threads, "device": opts.device}
        row["latency_b1"] = measure_latency(backend, opts.runs, opts.warmup, 1)
        if opts.batch > 1:
            try:
                row[f"latency_b{opts.batch}"] = measure_latency(
                    backend, max(10, opts.runs // opts.batch), max(2, opts.warmup // opts.batch), opts.batch)
            except (ValueError, RuntimeError) as exc:  # a fixed-batch engine or graph
                row[f"latency_b{opts.batch}"] = {"error": first_line(exc, 160)}
        try:
            ds = open_dataset(opts.dataset, opts.data_root, opts.split)
        except DataError as exc:  # timing needs no dataset: say mIoU was not measured, and why
            row["miou"] = None
            row["eval"] = {"not_measured": first_line(exc)}
        else:
            if opts.eval_frames:
                ds = subset(ds, opts.eval_frames)
            metrics = evaluate_backend(backend, ds, progress=False)
            row.update({"miou": metrics["miou"], "pixel_accuracy": metrics["pixel_accuracy"],
                        "per_class_iou": dict(zip(metrics["classes"], metrics["per_class_iou"], strict=True)),
                        "eval": {"dataset": opts.dataset, "split": opts.split, "frames": metrics["frames"]}})
        row["device_memory_bytes"] = _device_memory(backend)
    finally:
        seg.close()
    if opts.video:  # after the model above is closed: the run opens its own, as segrt run does
        row["pipeline"] = _pipeline(path, opts)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    row["peak_rss_mb"] = round(rss / 1024, 1)
    row["rss_before_mb"] = round(rss0 / 1024, 1)
    return row


def _pipeline(path: str, opts: BenchOptions) -> dict:
    """The real loop on the video, as ``segrt run VIDEO --no-save`` runs it (the same path,
    settings and planning: capture ∥ inference ∥ render), output discarded."""
    import tempfile

    from segrt.realtime.run import RunRequest, run_app

    problem = None
    with tempfile.TemporaryDirectory(prefix="segrt-bench-") as tmp:
        report = Path(tmp) / "run.json"
        try:
            summary = run_app(RunRequest.of(opts.video, path, "null", report=report, max_frames=opts.pipeline_frames,
                                            progress=False, overrides={"device": opts.device, "threads": opts.threads}))
            problem = "interrupted" if getattr(summary, "signum", None) is not None else None
        except SegrtError as exc:  # a stream problem (a short or broken video) after the report: say so
            if not report.is_file():
                raise
            problem = first_line(exc)
        doc = json.loads(report.read_text())
    row = {"frames": doc["frames_out"], "fps": round(doc["fps"], 2),
           "stages_ms": {k: v["mean_ms"] for k, v in doc["stages"].items()}, "workers": doc["backend"]["workers"]}
    return {**row, "problem": problem} if problem else row


def _worker(path: str, opts: dict) -> dict:
    return bench_model(path, BenchOptions(**opts))


def run_bench(paths: list[str], opts: BenchOptions, echo=print) -> list[dict]:
    """Benchmarks each model in a fresh process; a model that fails gets an ``error`` row."""
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for path in paths:
        echo(f"benchmarking {path} …")
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            try:
                row = pool.submit(_worker, str(path), asdict(opts)).result()
            except SegrtError as exc:
                row = {"model": model_name(path), "path": str(path), "error": str(exc)}
            except Exception as exc:  # a backend crash is a result to report, not a reason to stop  # noqa: BLE001
                row = {"model": model_name(path), "path": str(path), "error": f"{type(exc).__name__}: {exc}"}
        if "error" in row:
            echo(f"  failed: {row['error']}")
        rows.append(row)
    names = [Path(p).name for p in paths]
    for row in rows:  # two files with one name (a/m.onnx, b/m.onnx) are told apart by their paths
        if names.count(row["model"]) > 1:
            row["model"] = row["path"]
    return rows


def flat(row: dict, batch: int) -> dict:
    """The table's columns of one result."""
    if "error" in row:
        return {"model": row["model"], "error": row["error"]}
    b1, bn, pipe = row["latency_b1"], row.get(f"latency_b{batch}", {}), row.get("pipeline", {})
    return {"model": row["model"], "backend": row["backend"], "precision": row["precision"],
            "p50_ms": b1["p50_ms"], "mean_ms": b1["mean_ms"], "p95_ms": b1["p95_ms"], "p99_ms": b1["p99_ms"],
            f"b{batch}_img_s": bn.get("images_per_s"), "pipeline_fps": pipe.get("fps"),
            "miou": round(100 * row["miou"], 2) if row["miou"] is not None else None, "load_s": row["load_s"],
            "peak_rss_mb": row["peak_rss_mb"], "file_mb": row["file_mb"]}


def sort_rows(rows: list[dict], key: str) -> list[dict]:
    if key not in SORT_KEYS:
        raise SegrtError(f"--sort {key!r}: choose {', '.join(SORT_KEYS)}")
    field, descending = SORT_KEYS[key]

    def k(r):
        v = r.get(field)
        if "error" in r:  # failures last, after rows that only lack this number
            return (2, 0)
        if v is None:
            return (1, 0)
        return (0, -v if descending else v)

    return sorted(rows, key=k)


def speedups(rows: list[dict], baseline: str | None) -> dict[str, float]:
    """p50 latency of the baseline row divided by each row's (2.0 = twice as fast)."""
    base = next((r for r in rows if r.get("model") == baseline and "error" not in r), None)
    if base is None:
        return {}
    return {r["model"]: round(base["p50_ms"] / r["p50_ms"], 2) for r in rows if "error" not in r and r["p50_ms"]}


def markdown(rows: list[dict], batch: int, baseline: str | None = None) -> str:
    cols = ["model", "backend", "precision", "p50_ms", "p95_ms", "p99_ms", f"b{batch}_img_s", "pipeline_fps",
            "miou", "load_s", "peak_rss_mb", "file_mb"]
    sp = speedups(rows, baseline)
    head = cols + (["speedup"] if sp else [])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | failed: {r['error'][:80]} |" + " |" * (len(head) - 2))
            continue
        cells = ["–" if r.get(c) is None else str(r[c]) for c in cols]
        if sp:
            cells.append(f"{sp.get(r['model'], '–')}x")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def machine_info(opts: BenchOptions) -> dict:
    from segrt import envinfo

    return {**envinfo.provenance(), "gpu": envinfo.gpu(), "threads": opts.threads, "device": opts.device}


def write_results(rows: list[dict], opts: BenchOptions, out_dir: Path, batch: int, sort: str,
                  baseline: str | None) -> dict[str, Path]:
    """JSON (everything), CSV and Markdown (the table), PNG (FPS vs mIoU); each written whole
    or not at all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = sort_rows([flat(r, batch) for r in rows], sort)
    paths = {"json": out_dir / "bench.json", "csv": out_dir / "bench.csv", "md": out_dir / "bench.md"}
    doc = {**machine_info(opts), "options": asdict(opts), "results": rows, "table": table,
           "speedup_vs": baseline, "speedups": speedups(table, baseline)}
    write_text_atomic(paths["json"], json.dumps(doc, indent=2) + "\n", "benchmark results")
    cols = list(dict.fromkeys(k for r in table for k in r))
    with atomic_output(paths["csv"], "benchmark results") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(table)
    write_text_atomic(paths["md"], markdown(table, batch, baseline) + "\n", "benchmark results")
    chart = fps_vs_miou(table, out_dir / "bench.png")
    if chart is not None:
        paths["png"] = chart
    return paths


def fps_vs_miou(table: list[dict], out: Path) -> Path | None:
    """Scatter of speed (pipeline FPS, else 1000/p50) against val mIoU; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    pts = [(r["model"], r.get("pipeline_fps") or 1000.0 / r["p50_ms"], r["miou"]) for r in table
           if "error" not in r and r.get("miou") is not None]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, fps, miou in pts:
        ax.scatter(fps, miou, s=40)
        ax.annotate(name, (fps, miou), textcoords="offset points", xytext=(5, 4), fontsize=8)
    label = "pipeline FPS (end to end)" if any(r.get("pipeline_fps") for r in table) else "model FPS (1000 / p50 ms)"
    ax.set(xlabel=label, ylabel="val mIoU (%)", title="speed vs accuracy")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out, 110)
    plt.close(fig)
    return out

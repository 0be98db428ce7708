"""Building the model zoo: train each recipe, ship small weights, measure, and write the table.

For each ``configs/zoo/*.yaml``: train (unless ``best.pt`` exists), slim to FP16 into the zoo
folder, export to ONNX, score on val through ONNX Runtime, count parameters and GFLOPs,
time CPU inference, and write ``zoo_<name>.json``; then one markdown table (``zoo.md`` beside the
results, and between the zoo markers of ``docs/zoo.md`` with ``segrt zoo --doc``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from segrt import envinfo
from segrt.config import load_config
from segrt.datasets import open_dataset
from segrt.engines.base import open_backend
from segrt.engines.export import export_onnx
from segrt.errors import SegrtError
from segrt.evaluation.evaluate import evaluate_backend
from segrt.evaluation.latency import measure_latency
from segrt.files import shown, write_text_atomic
from segrt.train import checkpoint
from segrt.train.config import TrainConfig
from segrt.train.trainer import fit

# Every weights file in segrt/zoo/ together. 60 MB until the robust GPU default (7.6 MB) joined
# the base FPN it starts from, whose checkpoint re-exports, fine-tunes and teaches (docs/zoo.md);
# 70 MB since the CPU default's successor (4.3 MB) joined the file it replaced, which ships on.
BUDGET_MB = 70.0
ZOO_START, ZOO_END = "<!-- zoo:start -->", "<!-- zoo:end -->"  # where the table goes in docs/zoo.md


# CamVid's 480x360 rounded to the /32 grid every architecture needs (360 is not a multiple of 32)
FULL_SIZE = (480, 352)


def gflops(net: torch.nn.Module, width: int, height: int) -> float:
    """GFLOPs of one forward pass, a multiply-add counted as 2."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 3, height, width))
    return round(counter.get_total_flops() / 1e9, 3)


def model_stats(ckpt: dict, size: tuple[int, int] | None = None) -> dict:
    """Parameters, and GFLOPs at the size it ships at (default: its training input size) and
    at CamVid's full size."""
    net = checkpoint.build_from_checkpoint(ckpt)
    w, h = size or (ckpt["preprocess"]["width"], ckpt["preprocess"]["height"])
    return {"params": sum(p.numel() for p in net.parameters()), "gflops": gflops(net, w, h),
            "gflops_full": gflops(net, *FULL_SIZE), "full_size": list(FULL_SIZE), "input": [w, h]}


def training_stages(run: Path, init_from: str | None = None) -> list[dict]:
    """Epochs and seconds of ``run`` and, when it started from another run's checkpoint
    (``init_from``), of that run first, and so on back to the first stage (each checkpoint
    records the ``init_from`` of its own run)."""
    runs: list[Path] = []
    pretrained: dict[Path, str] = {}  # each earlier stage's encoder init, as its checkpoint records it
    while init_from and (Path(init_from).parent / "metrics.csv").exists() and len(runs) < 16:
        runs.insert(0, Path(init_from).parent)
        # tensors and plain data only, bounded (no code runs from a stage's file)
        stage = checkpoint.read_torch_file(init_from, "stage checkpoint", "check its init_from", weights_only=True)
        config = (stage.get("config") if isinstance(stage, dict) else None) or {}
        if config.get("pretrained"):
            pretrained[runs[0]] = config["pretrained"]
        init_from = config.get("init_from")
    stages = []
    for r in [*runs, run]:
        with open(r / "metrics.csv", newline="") as f:
            log = list(csv.DictReader(f))
        stages.append({"run": str(r), "epochs": len(log), "seconds": round(sum(float(x["seconds"]) for x in log)),
                       **({"pretrained": pretrained[r]} if r in pretrained else {})})
    return stages


def build_entry(config_path: Path, data_root: Path | None, runs_dir: Path, zoo_dir: Path,
                results_dir: Path, train: bool = True, threads: int = 2) -> dict:
    cfg = load_config(config_path, TrainConfig)
    run = runs_dir / f"{config_path.stem}_{cfg.dataset}"
    name = cfg.name or run.name
    if not (run / "best.pt").exists():
        if not train:
            raise SegrtError(f"{run / 'best.pt'}: not trained yet; run without --no-train")
        last = run / "last.pt"  # a run killed part-way continues; other leftovers are replaced
        fit(cfg, data_root, run, resume=last if last.exists() else None, overwrite=not last.exists())
    shipped = checkpoint.slim(run / f"{cfg.ship}.pt", zoo_dir / f"{name}.pt")
    onnx_path = run / f"{name}.onnx"
    size = (cfg.export_width or cfg.input_width, cfg.export_height or cfg.input_height)
    export_onnx(shipped, onnx_path, name=name, size=size if size != (cfg.input_width, cfg.input_height) else None)
    val = open_dataset(cfg.dataset, data_root, "val")
    with open_backend(onnx_path, threads=threads) as backend:
        metrics = evaluate_backend(backend, val, progress=False)
        latency = measure_latency(backend)
    int8 = int8_entry(onnx_path, cfg.dataset, data_root, threads)
    stages = training_stages(run, cfg.init_from)
    ckpt = checkpoint.load(shipped)
    row = {"name": name, "model": cfg.model, "model_args": dict(cfg.model_args), "recipe": str(config_path),
           # the encoder's init: this recipe's, or the first stage's that named one
           "pretrained": cfg.pretrained or next((st["pretrained"] for st in stages if "pretrained" in st), "scratch"),
           **model_stats(ckpt, size), "fp16_mb": round(shipped.stat().st_size / 1e6, 2),
           "miou": metrics["miou"], "pixel_accuracy": metrics["pixel_accuracy"],
           "per_class_iou": dict(zip(metrics["classes"], metrics["per_class_iou"], strict=True)),
           "cpu_latency": {**latency, "threads": threads, "backend": "onnxruntime"},
           **({"int8": int8} if int8 else {}),
           "train_seconds": sum(st["seconds"] for st in stages), "epochs": sum(st["epochs"] for st in stages),
           "stages": stages,
           "trained_on_device": ckpt.get("device") or cfg.device, **envinfo.provenance()}
    write_text_atomic(results_dir / f"zoo_{name}.json", json.dumps(row, indent=2) + "\n")
    return row


def int8_entry(onnx_path: Path, dataset: str, data_root: Path | None, threads: int) -> dict:
    """INT8 (ONNX Runtime QDQ, 64 calibration frames of the train split) of the exported model:
    its val mIoU against FP32's (the accuracy gate) and its CPU latency. Written beside the
    FP32 export in the run folder, whether or not it passes the gate (``passed`` says)."""
    from segrt.engines.quantize import QuantizeOptions
    from segrt.evaluation.gate import GateData, quantize_with_gate

    result = quantize_with_gate(onnx_path, QuantizeOptions("int8", force=True),
                                GateData(dataset, data_root, threads=threads, progress=False), echo=lambda _: None)
    with open_backend(result.output, threads=threads) as backend:
        latency = measure_latency(backend)
    return {"miou": result.gate.miou, "delta_points": round(result.gate.delta, 2),
            "passed_gate": result.gate.passed, "cpu_latency": {**latency, "threads": threads}}


def encoder_init(pretrained: str) -> str:
    """The table's "encoder init" cell: a weight set's name, or for an encoder taken from a
    segrt checkpoint, that model's name (``segrt/zoo/fpn_lite0_camvid.pt`` → its FPN's)."""
    return f"{Path(pretrained).stem}'s encoder" if pretrained.endswith(".pt") else pretrained


def table(rows: list[dict], zoo_dir: Path | None = None) -> str:
    """The zoo table (Markdown). A recipe whose model does not ship in ``zoo_dir`` is named
    "NAME (not shipped)": every name the docs give as a model resolves (segrt run -m NAME)."""
    from segrt.engines.zoo import names

    shipped = {n.removesuffix(".int8").removesuffix(".fp16") for n in names(zoo_dir)}
    classes = list(rows[0]["per_class_iou"]) if rows else []
    full = "x".join(map(str, FULL_SIZE))
    head = ["model", "encoder init", "params", "GFLOPs (input)", f"GFLOPs @ {full}", "val mIoU", "dev check",
            *classes,
            "CPU ms FP32", "CPU ms INT8 (mIoU)", "recipe", "training"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        hours = r["train_seconds"] / 3600
        lines.append("| " + " | ".join([
            r["name"] if r["name"] in shipped else f"{r['name']} (not shipped)",
            encoder_init(r.get("pretrained", "scratch")),
            f"{r['params'] / 1e6:.2f} M", f"{r['gflops']:.2f} @ {r['input'][0]}x{r['input'][1]}",
            f"{r['gflops_full']:.2f}" if "gflops_full" in r else "–",
            f"**{100 * r['miou']:.1f}**", f"{r['dev_check']:.1f}" if "dev_check" in r else "–",
            *(f"{100 * v:.1f}" for v in r["per_class_iou"].values()),
            f"{r['cpu_latency']['p50_ms']:.1f}",
            f"{r['int8']['cpu_latency']['p50_ms']:.1f} ({100 * r['int8']['miou']:.1f})" if "int8" in r else "–",
            f"`{r['recipe']}`",
            f"{'+'.join(str(st['epochs']) for st in r.get('stages') or [r])} ep, {hours:.1f} h, "
            f"{r['trained_on_device']}"]) + " |")
    return "\n".join(lines)


def check_doc(doc: Path) -> str:
    """The text of ``doc``, refused unless it has both zoo markers (checked before the build,
    which can take hours, and again when the table is written)."""
    s = doc.read_text() if doc.is_file() else ""
    if ZOO_START not in s or ZOO_END not in s:
        raise SegrtError(f"--doc {shown(doc)}: no {ZOO_START} … {ZOO_END} markers to put the zoo table between "
                         "(the repository's page is docs/zoo.md)")
    return s


def update_doc(doc: Path, text: str) -> None:
    """Replaces what lies between the zoo markers in the Markdown file ``doc`` (the
    repository's is ``docs/zoo.md``; the README keeps a short hand-written table)."""
    head, rest = check_doc(doc).split(ZOO_START, 1)
    write_text_atomic(doc, f"{head}{ZOO_START}\n{text}\n{ZOO_END}{rest.split(ZOO_END, 1)[1]}")


def shipped_megabytes(zoo_dir: Path) -> float:
    """Every weights file in the zoo folder: FP16 checkpoints and the shipped ONNX files."""
    return sum(p.stat().st_size for p in Path(zoo_dir).iterdir() if p.suffix in (".pt", ".onnx")) / 1e6


def all_rows(results_dir: Path, built: list[dict]) -> list[dict]:
    """The table's rows: the entries just built and every other ``zoo_*.json`` already in
    ``results_dir`` (models measured before, whose runs may live on another machine), most
    accurate first."""
    rows = {r["name"]: r for r in built}
    for path in sorted(Path(results_dir).glob("zoo_*.json")):
        row = json.loads(path.read_text())
        rows.setdefault(row["name"], row)
    for name, figure in dev_check_figures(Path(results_dir)).items():
        if name in rows:
            rows[name] = {**rows[name], "dev_check": figure}
    return sorted(rows.values(), key=lambda r: -r["miou"])


DEV_CHECK_RESULT = "devcheck_shipped.json"


def dev_check_figures(results_dir: Path) -> dict[str, float]:
    """Zoo name → the out-of-domain dev-check mIoU of its shipped file, from
    ``benchmarks/devcheck.py --out results_dir/devcheck_shipped.json`` (the FP32 or INT8 file
    the zoo ships; the CPU default's smaller export is a row of its own there, not here)."""
    path = results_dir / DEV_CHECK_RESULT
    if not path.is_file():
        return {}
    figures = {}
    for row in json.loads(path.read_text())["models"]:
        stem = row["model"].removesuffix(".onnx").removesuffix(".int8")
        figures[stem] = row["dev_check_miou"]
    return figures


def build(config_paths: list[Path], data_root: Path | None, runs_dir: Path, zoo_dir: Path,
          results_dir: Path, train: bool = True, doc: Path | None = None) -> list[dict]:
    built = [build_entry(p, data_root, runs_dir, zoo_dir, results_dir, train) for p in config_paths]
    rows = all_rows(results_dir, built)
    total = shipped_megabytes(zoo_dir)
    if total > BUDGET_MB:
        raise SegrtError(f"shipped weights in {zoo_dir} total {total:.1f} MB, over the {BUDGET_MB:.0f} MB budget; "
                         "narrow a recipe's model_args")
    write_text_atomic(results_dir / "zoo.md", table(rows, zoo_dir) + "\n")
    if doc is not None:
        update_doc(doc, table(rows, zoo_dir))
    return rows

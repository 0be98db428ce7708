"""``segrt eval``: mIoU, per-class IoU, plots, comparisons and flicker of a model on a dataset
split (registered on the main group in :mod:`segrt.app.cli`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from segrt.app.options import MODEL, THREADS, data_root_option
from segrt.engines.zoo import default_for
from segrt.errors import SegrtError
from segrt.files import shown


@click.command("eval")
@click.argument("model", type=MODEL, required=False)
@click.option("--dataset", type=click.Choice(["camvid", "cityscapes", "folder", "pairs"]), default="camvid",
              show_default=True)
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="val", show_default=True)
@data_root_option("Dataset folder [default: $SEGRT_CAMVID, else where 'segrt data camvid' put it].")
@click.option("--class-map", "class_map", default=None, metavar="NAME|FILE",
              help="Map the dataset's label values to the model's classes (YAML; shipped: cityscapes19_to_camvid, "
                   "cityscapes34_to_camvid), to score a model on another dataset's taxonomy.")
@click.option("--report", type=click.Path(path_type=Path), default=None, help="Write the metrics as JSON.")
@click.option("--plots", type=click.Path(path_type=Path), default=None,
              help="Folder for confusion.png, worst_frames.png (and flicker.png).")
@click.option("--compare", "other", type=MODEL, default=None,
              help="A second model scored the same way; prints per-class deltas (e.g. INT8 vs FP32).")
@click.option("--flicker", "flicker_source", default=None,
              help="A video or camvid:SPLIT/SEQUENCE: share of pixels whose label flips frame to frame.")
@click.option("--flicker-frames", type=click.IntRange(min=2), default=300, show_default=True)
@click.option("--threads", type=THREADS, default=0, help="Inference threads; 0 = all cores.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "tensorrt"]), default="cpu", show_default=True,
              help="ONNX Runtime provider for .onnx, torch device for .pt; .engine is TensorRT.")
def evaluate(model: Path | None, dataset: str, split: str, data_root: Path | None, class_map: str | None,
             report: Path | None,
             plots: Path | None, other: Path | None, flicker_source: str | None, flicker_frames: int,
             threads: int, device: str) -> None:
    """mIoU, per-class IoU and pixel accuracy of MODEL (.onnx, .engine, a .pt checkpoint, or a
    shipped model's name; default: the shipped default for --device).

    All go through the same preprocessing and the same torch-free metric code; predictions
    are scored at the labels' resolution (nearest upscale), as the overlay shows them.

    \b
    segrt eval model.onnx --plots eval/ --report eval/report.json
    segrt eval model.onnx --compare model.int8.onnx
    segrt eval model.onnx --flicker camvid:val/0016E5 --plots eval/
    segrt eval model.onnx --dataset cityscapes --data-root CS --class-map cityscapes19_to_camvid
    """
    from segrt.checks import check_paths
    from segrt.datasets import open_dataset
    from segrt.datasets.classmap import load_class_map
    from segrt.files import remove_path

    model = model or default_for(device)
    flicker_path = flicker_source if flicker_source and Path(flicker_source).exists() else None
    check_paths({"MODEL": model, "--compare": other, "--data-root": data_root, "--flicker": flicker_path},
                {"--report": report, "--plots": plots})
    if report is not None and report.is_dir():
        raise SegrtError(f"--report {shown(report)} is a folder; give a file name")
    if report is not None and not report.parent.is_dir():
        raise SegrtError(f"--report {shown(report)}: folder {shown(report.parent)} does not exist; create it first")
    if plots is not None and plots.exists() and not plots.is_dir():
        raise SegrtError(f"--plots {shown(plots)}: exists and is not a folder; name a folder")
    # two models with one file name (a/m.onnx, b/m.onnx) are told apart by their paths
    labels = {model: model.name, **({other: other.name} if other else {})}
    if other is not None and model.name == other.name:
        labels = {model: str(model), other: str(other)}
    cmap = load_class_map(class_map) if class_map else None
    ds = open_dataset(dataset, data_root, split)
    if len(ds) == 0:
        raise SegrtError(f"{dataset} {split}: no frames to score; check --data-root and --split")
    made_plots = plots is not None and not plots.exists()
    try:
        if plots is not None:
            plots.mkdir(parents=True, exist_ok=True)
        doc, written = _evaluate_all(_EvalJob(model, other, labels, ds, cmap, class_map, plots, flicker_source,
                                              flicker_frames, threads, device, data_root, dataset, split))
        if report is not None:
            from segrt.files import write_text_atomic

            written.append(write_text_atomic(report, json.dumps(doc, indent=2) + "\n", "report"))
    except BaseException:
        if made_plots and plots is not None and plots.is_dir() and not any(plots.iterdir()):
            remove_path(plots)
        raise
    if written:
        click.echo("wrote " + ", ".join(str(p) for p in written))


@dataclass(frozen=True)
class _EvalJob:
    """What one ``segrt eval`` scores, and how (its options, checked)."""

    model: Path
    other: Path | None            # --compare
    labels: dict                  # model path → its name in the report and the printout
    ds: object                    # the dataset split, opened
    cmap: object                  # the class map, or None
    class_map_name: str | None
    plots: Path | None
    flicker_source: str | None
    flicker_frames: int
    threads: int
    device: str
    data_root: Path | None
    dataset: str
    split: str


def _evaluate_all(job: _EvalJob) -> tuple[dict, list[Path]]:
    """Scores MODEL (and --compare), makes the plots; returns (report document, files written)."""
    model, other, labels, ds, cmap = job.model, job.other, job.labels, job.ds, job.cmap
    plots, flicker_source, class_map_name = job.plots, job.flicker_source, job.class_map_name
    from segrt import envinfo
    from segrt.datasets import classmap
    from segrt.evaluation import evaluate as ev
    from segrt.realtime.api import Segmenter

    results, flick, written = {}, {}, []
    for path in [model, *([other] if other else [])]:
        label = labels[path]
        with Segmenter(path, device=job.device, threads=job.threads) as seg:
            try:
                backend, scored = classmap.apply(cmap, seg.backend, ds)
            except SegrtError as exc:
                raise SegrtError(f"--class-map {class_map_name}: {exc}") from None
            metrics = ev.evaluate_backend(backend, scored)
            metrics["backend"] = backend.name
            if plots is not None:
                tag = "" if path == model else (f"_{path.stem}" if path.stem != model.stem else "_compare")
                written.append(ev.worst_frames(backend, scored, metrics, plots / f"worst_frames{tag}.png"))
                try:
                    from segrt.plots import confusion_matrix

                    written.append(confusion_matrix(np.asarray(metrics["confusion"]), metrics["classes"],
                                                    plots / f"confusion{tag}.png"))
                except ImportError:
                    click.echo("confusion.png needs matplotlib: pip install matplotlib", err=True)
            if flicker_source:
                from segrt.realtime.sources import open_source

                with open_source(flicker_source, data_root=job.data_root) as src:
                    flick[label] = ev.flicker(backend, ev.frames_of(src), job.flicker_frames)
                if flick[label]["pairs"] < 1:
                    raise SegrtError(f"--flicker {shown(flicker_source)}: needs at least 2 frames and gave fewer; "
                                     "nothing was written")
        results[label] = metrics
        click.echo(f"== {label} ({metrics['backend']})")
        click.echo(ev.format_metrics(metrics))
        note = trained_on_note(getattr(backend, "manifest", None), job.dataset, job.split)
        if note:
            metrics["note"] = note
            click.echo(f"note: {note}")
    doc = {"model": str(model), "dataset": job.dataset, "split": job.split, "results": {},
           **({"class_map": cmap.source} if cmap is not None else {}),
           **envinfo.provenance()}
    for name, m in results.items():
        doc["results"][name] = {**{k: v for k, v in m.items() if k != "frame_miou"},
                                "per_class_iou": dict(zip(m["classes"], m["per_class_iou"], strict=True))}
    first = labels[model]
    doc.update({k: doc["results"][first][k] for k in ("miou", "pixel_accuracy", "per_class_iou",
                                                        "mean_class_accuracy", "backend", "classes", "frames")})
    if other:
        doc["compare"] = ev.compare(results[first], results[labels[other]])
        click.echo(ev.format_compare(doc["compare"], first, labels[other]))
    if flick:
        doc["flicker"] = flick
        for name, f in flick.items():
            click.echo(f"flicker {name}: {100 * f['mean']:.2f}% of pixels change label per frame "
                       f"(p95 {100 * f['p95']:.2f}%, {f['pairs']} pairs of {flicker_source})")
        if plots is not None:
            p = ev.flicker_plot(flick, plots / "flicker.png")
            if p:
                written.append(p)
    return doc, written


def trained_on_note(manifest, dataset: str, split: str) -> str | None:
    """A warning when the model trained on the very split it is scored on (a shipped model
    trained on train+val, scored on val): the figure says little about new frames; its
    train-only twin's, when the manifest records one, does."""
    provenance = getattr(manifest, "provenance", None) or {}
    trained_on = str(provenance.get("trained_on", ""))
    words = trained_on.split()
    if len(words) < 2 or words[0] != dataset or split not in words[1].split("+"):
        return None
    metrics = getattr(manifest, "metrics", None) or {}
    twin = metrics.get("val_miou_onnxruntime") if split == "val" and metrics.get("val_miou_of") else None
    return (f"this model trained on {dataset} {words[1]}, so these {split} frames are frames it learned from"
            + (f"; its train-only twin scores {100 * twin:.2f}" if twin is not None else ""))

"""``segrt train``, ``segrt export`` and ``segrt zoo``: the training-side commands
(registered on the main group in :mod:`segrt.app.cli`). torch is imported only inside them."""

from __future__ import annotations

from pathlib import Path

import click

from segrt.app.options import (
    CHECKPOINT,
    calib_frames_option,
    check_output_suffix,
    data_root_option,
    eval_frames_option,
    given,
    unused,
)
from segrt.checks import check_paths
from segrt.errors import SegrtError
from segrt.errors import require_module as _require


@click.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              default=Path("configs/train/fcn8s_camvid.yaml"), show_default=True,
              help="Training YAML.")
@data_root_option("CamVid folder [default: $SEGRT_CAMVID, else where 'segrt data camvid' put it].")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/train"), show_default=True,
              help="Output folder for checkpoints and metrics.csv.")
@click.option("--epochs", type=int, default=None, help="Override the config's epochs.")
@click.option("--resume", type=click.Path(path_type=Path), default=None,
              help="Continue exactly from a last.pt checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace the training run already in --out.")
def train(config_path: Path, data_root: Path | None, out: Path, epochs: int | None,
          resume: Path | None, overwrite: bool) -> None:
    """Train a model on CamVid train; evaluate on val; keep last.pt and best.pt.

    An --out folder that already holds a run is continued with --resume OUT/last.pt or
    replaced with --overwrite; without either, nothing is touched.
    """
    from segrt.config import load_config
    from segrt.train.config import TrainConfig

    check_paths({"--config": config_path, "--resume": resume, "--data-root": data_root},
                {"--out": out})
    cfg = load_config(config_path, TrainConfig, {"epochs": epochs})
    _require("torch", "training", "pip install torch  # then: pip install -e '.[train]'")
    from segrt.train.trainer import fit

    best = fit(cfg, data_root, out, resume, overwrite=overwrite)
    if best is not None and "epoch" in best:  # rank 0 (or the only process), after an evaluation
        click.echo(f"best val mIoU {best['miou']:.4f} (epoch {best['epoch']}); checkpoint {out / 'best.pt'}")


def parse_size(text: str) -> tuple[int, int]:
    """'384x288' → (384, 288); anything else is a one-line error naming --size."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SegrtError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 384x288") from None
    if not (0 < w <= 8192 and 0 < h <= 8192) or w % 32 or h % 32:
        raise SegrtError(f"--size {text!r}: width and height must be multiples of 32 up to 8192, e.g. 384x288")
    return w, h


@click.command()
@click.argument("checkpoint", type=CHECKPOINT)
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Output .onnx [default: CHECKPOINT with .onnx suffix; runs/export/NAME.onnx for a shipped "
                   "model].")
@click.option("--opset", type=click.IntRange(17, 21), default=None,
              help="ONNX opset, 17-21 [default: 18, what TensorRT 10 and 11 parse].")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Compare ONNX Runtime against torch on real frames after export.")
@data_root_option("CamVid folder for the check [default: $SEGRT_CAMVID, else where 'segrt data camvid' put it].")
@click.option("--dynamic", is_flag=True,
              help="Free batch, height and width axes [default: fixed batch 1 at the training size].")
@click.option("--fp16-storage", is_flag=True,
              help="Store weights as FP16, compute in FP32: half the file, same outputs for an FP16 checkpoint.")
@click.option("--size", default=None, metavar="WxH",
              help="Input size to export for, multiples of 32 (e.g. 384x288) [default: the training size].")
@click.option("--tta", type=click.Choice(["flip", "flip-ms"]), default=None,
              help="Test-time augmentation inside the graph: flip averages the frame's and its mirror image's "
                   "class probabilities (twice the compute); flip-ms does so at 0.75x, 1x and 1.25x "
                   "(about 6.3x). For GPUs with headroom.")
@click.option("--format", "fmt", type=click.Choice(["onnx", "engine"]), default="onnx", show_default=True,
              help="engine: go on to build a TensorRT engine (needs TensorRT and an NVIDIA GPU).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="fp16/int8: quantize the export behind the val-mIoU gate (as 'segrt quantize').")
@calib_frames_option("INT8 calibration frames, spread evenly over the dataset's train split.")
@eval_frames_option()
def export(checkpoint: Path, output: Path | None, opset: int | None, check: bool,
           data_root: Path | None, dynamic: bool, fp16_storage: bool, size: str | None, tta: str | None, fmt: str,
           precision: str, calib_frames: int, eval_frames: int | None) -> None:
    """Export a checkpoint (a .pt or a shipped model's name) to ONNX (argmax in the graph, uint8
    label map) + JSON manifest; with --precision and --format, on to FP16/INT8 and an engine.

    The graph passes the ONNX checker and shape inference, and (unless --no-check) its label
    maps must agree with torch's on >= 99.5% of pixels of CamVid val frames, or nothing is
    written. One step to an engine: export → quantize (gate) → build, each file beside the
    last (the separate commands do the same steps).

    \b
    segrt export runs/fcn8s/best.pt -o fcn8s.onnx
    segrt export fcn8s_camvid --format engine --precision int8
    segrt export fpn_lite0_camvid --size 608x448 --tta flip -o fpn_tta.onnx
    """
    wh = parse_size(size) if size else None
    if precision == "fp32":
        unused(given("eval_frames", "calib_frames"),
               "is for the quantization step: add --precision fp16 or int8, or leave it out", refuse=True)
    output = output or default_export_path(checkpoint)
    check_output_suffix(output, ".onnx")
    check_paths({"CHECKPOINT": checkpoint, "--data-root": data_root}, {"--output": output})
    _require("torch", "export", "pip install torch  # then: pip install -e '.[export]'")
    _require("onnxscript", "export", "pip install -e '.[export]'")
    from segrt.engines import export as ex

    val = None
    if check:  # find the check's frames before exporting, so a missing dataset fails fast
        from segrt.datasets import open_dataset
        from segrt.errors import DataError

        try:
            val = open_dataset("camvid", data_root, "val")
        except DataError as exc:
            raise SegrtError(f"--check compares torch and ONNX Runtime on CamVid val frames: {exc}; "
                             "or pass --no-check to skip the comparison") from None
    frames = [val.read_image(i) for i in range(0, len(val), max(1, len(val) // 8))] if val else None
    manifest = ex.export_onnx(checkpoint, output, dynamic=dynamic, check_frames=frames, fp16_storage=fp16_storage,
                              size=wh, tta=tta,
                              **({"opset": opset} if opset else {}))
    pre = manifest.preprocess
    shape = "dynamic batch/height/width" if dynamic else f"fixed 1x3x{pre.height}x{pre.width}"
    click.echo(f"wrote {output} and {output.with_suffix('.json')} "
               f"({manifest.architecture}, {manifest.precision}, opset {manifest.opset}, {shape})")
    if frames:
        p = manifest.provenance["parity"]
        click.echo(f"parity: ONNX Runtime and torch agree on {p['agreement']:.4%} of pixels ({p['frames']} val frames)")
    onnx_path = output
    if precision != "fp32":
        from segrt.app.cli_engines import run_quantize
        from segrt.engines.quantize import QuantizeOptions
        from segrt.evaluation.gate import GateData

        onnx_path = run_quantize(output, QuantizeOptions(precision, "tensorrt" if fmt == "engine" else "onnxruntime"),
                                 GateData(data_root=data_root, calib_frames=calib_frames,
                                          eval_frames=eval_frames))
    if fmt == "engine":
        import importlib.util

        if importlib.util.find_spec("tensorrt") is None:
            raise SegrtError(f"building the engine needs TensorRT and an NVIDIA GPU, which this machine does not "
                             f"have; {onnx_path} and its manifest are ready: on the GPU machine run "
                             f"'segrt build {onnx_path}', or run it with --device tensorrt, which builds and caches "
                             "the engine on first use")
        from segrt.engines.tensorrt_build import build_engine

        build_engine(onnx_path, echo=click.echo)  # beside it, the default workspace and batch


def default_export_path(checkpoint: Path) -> Path:
    """CHECKPOINT.onnx beside a checkpoint of yours; for a shipped model (inside the package),
    runs/export/NAME.onnx ($SEGRT_RUNS_DIR for runs), never into the installed package."""
    from segrt.engines.zoo import zoo_dir
    from segrt.files import runs_dir

    if checkpoint.resolve().parent == zoo_dir().resolve():
        return runs_dir() / "export" / f"{checkpoint.stem}.onnx"
    return checkpoint.with_suffix(".onnx")


@click.command()
@click.argument("configs", nargs=-1, type=click.Path(path_type=Path))
@data_root_option("Dataset folder [default: where 'segrt data' put it].")
@click.option("--runs", type=click.Path(path_type=Path), default=Path("runs/zoo"), show_default=True,
              help="Training runs (one folder per recipe; an existing best.pt is reused).")
@click.option("--zoo-dir", type=click.Path(path_type=Path), default=Path("segrt/zoo"), show_default=True,
              help="Where the FP16 checkpoints to ship go.")
@click.option("--results", type=click.Path(path_type=Path), default=Path("benchmarks/results"),
              show_default=True, help="Where zoo_<name>.json and zoo.md go.")
@click.option("--train/--no-train", default=True, help="Train recipes that have no best.pt yet.")
@click.option("--doc", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also put the table between the zoo markers of this Markdown file (the repository's: docs/zoo.md).")
def zoo(configs: tuple[Path, ...], data_root: Path | None, runs: Path, zoo_dir: Path, results: Path,
        train: bool, doc: Path | None) -> None:
    """Build the model zoo from recipes [default: configs/zoo/*.yaml]: train, ship FP16
    weights, export, score on val, count params/GFLOPs, time CPU inference, write the table."""
    _require("torch", "zoo", "pip install torch  # then: pip install -e '.[train,export]'")
    from segrt.app.zoo_build import build, check_doc, table

    paths = list(configs) or sorted(Path("configs/zoo").glob("*.yaml"))
    if not paths:
        raise SegrtError("no recipes: pass CONFIGS or run from the repository root (configs/zoo/*.yaml)")
    from segrt.config import load_config
    from segrt.train.config import TrainConfig

    for path in paths:  # every recipe checked before any folder is made
        load_config(path, TrainConfig)
    if doc is not None:
        check_doc(doc)
    check_paths({"CONFIGS": paths, "--data-root": data_root}, {"--runs": runs, "--zoo-dir": zoo_dir,
                                                              "--results": results})
    for d in (runs, zoo_dir, results):
        d.mkdir(parents=True, exist_ok=True)
    rows = build(paths, data_root, runs, zoo_dir, results, train, doc)
    click.echo(table(rows, zoo_dir))


@click.command("pseudo-label")
@click.argument("teacher", type=CHECKPOINT)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for the labelled frames (images/train, masks/train, dataset.yaml); must not exist.")
@click.option("--clips-root", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where 'segrt data clips' put the clips [default: $SEGRT_DATA/clips or ~/.cache/segrt/...].")
@click.option("--frames", type=click.IntRange(1, 100_000), default=2400, show_default=True,
              help="Frames to label, spread over the pool's clips in proportion to their lengths.")
@click.option("--size", default=None, help="The teacher's run size WxH [default: its training size].")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="Confidence a pixel needs to keep its label (lowered per class, see --min-keep).")
@click.option("--min-keep", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Each class keeps at least this share of the pixels predicted as it.")
@click.option("--threads", type=click.IntRange(0, 1024), default=0, help="torch CPU threads; 0 = all cores.")
def pseudo_label(teacher: Path, out: Path, clips_root: Path | None, frames: int, size: str | None,
                 threshold: float, min_keep: float, threads: int) -> None:
    """Label frames of the self-training pool ('segrt data clips --role pool') with a TEACHER
    checkpoint: flip-averaged softmax, unsure pixels void. Add the folder to a recipe with
    extra_data. The held-out clips of the flicker check are never labelled.

    \b
    segrt data clips
    segrt pseudo-label runs/fpn/best.pt --size 608x448 --out runs/pseudo/round1
    """
    from segrt.datasets import clips

    check_paths({"TEACHER": teacher, "--clips-root": clips_root}, {"--out": out})
    if out.exists():
        raise SegrtError(f"--out {out}: already exists; name a new folder (nothing is replaced)")
    wanted = parse_size(size) if size else None
    root = clips_root or clips.default_root()
    pool = [(c, clips.clip_file(root, c)) for c in clips.load_clips() if c.role == "pool"]
    missing = [str(p) for _, p in pool if not p.is_file()]
    if missing:
        raise SegrtError(f"{missing[0]}: missing ({len(missing)} of {len(pool)} pool clips); run "
                         "'segrt data clips --role pool' first")
    _require("torch", "pseudo-labelling", "pip install torch  # then: pip install -e '.[train]'")
    import json

    import torch

    from segrt.train.pseudo_label import pseudo_label as label_frames

    if threads:
        torch.set_num_threads(threads)
    summary = label_frames(teacher, [(c.name, p, c.crop) for c, p in pool], out, frames, wanted, threshold, min_keep)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    click.echo(f"labelled {summary['frames']} frames of {summary['clips']} clips into {out}; "
               f"{100 * summary['kept_share']:.1f}% of pixels kept")

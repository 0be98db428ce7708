"""``segrt quantize``, ``segrt build`` and ``segrt bench``: the precision, engine and benchmark
commands (registered on the main group in :mod:`segrt.app.cli`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from segrt.app.options import (
    MODEL,
    THREADS,
    ModelArg,
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
from segrt.files import numbered_folder, shown

ONNX_MODEL = ModelArg((".onnx",))


@click.command()
@click.argument("model", type=ONNX_MODEL)
@click.option("--precision", type=click.Choice(["fp16", "int8"]), required=True)
@click.option("--target", type=click.Choice(["onnxruntime", "tensorrt"]), default="onnxruntime", show_default=True,
              help="INT8 layout: ONNX Runtime's fusable QDQ (fast on CPU) or TensorRT's Q/DQ (ModelOpt).")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Output .onnx [default: MODEL.fp16.onnx, MODEL.int8.onnx or MODEL.int8-trt.onnx].")
@click.option("--dataset", type=click.Choice(["camvid", "cityscapes", "folder", "pairs"]), default=None,
              help="Dataset whose val split scores the gate (folder, pairs: with --data-root) [default: the "
                   "one the model was trained on, from its manifest].")
@click.option("--calib", "calib_source", default=None,
              help="Calibration frames: DATASET:SPLIT, an image folder or a video file [default: the "
                   "dataset's train split].")
@calib_frames_option()
@data_root_option("Dataset folder for calibration and the gate [default: $SEGRT_CAMVID for CamVid, else "
                  "where 'segrt data' put it].")
@click.option("--threshold", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Largest val mIoU loss (points) the gate accepts.")
@click.option("--force", is_flag=True, help="Write the model even if it fails the gate.")
@click.option("--exclude", multiple=True,
              help="Keep an op type (Resize) or node names (regex) in higher precision; repeatable.")
@click.option("--auto", is_flag=True,
              help="INT8: keep the most sensitive layers in higher precision until the gate passes.")
@eval_frames_option()
@click.option("--threads", type=THREADS, default=0, help="ONNX Runtime threads for scoring; 0 = all cores.")
def quantize(model: Path, precision: str, target: str, output: Path | None, dataset: str | None,
             calib_source: str | None, calib_frames: int, data_root: Path | None, threshold: float, force: bool,
             exclude: tuple[str, ...], auto: bool, eval_frames: int | None, threads: int) -> None:
    """FP16 or INT8 ONNX from an FP32 MODEL.onnx, behind an accuracy gate.

    Both the FP32 model and the candidate are scored on the val split of the model's dataset
    (CamVid for the shipped models); a candidate that loses
    more than --threshold mIoU points is refused (nothing is written) unless --force.

    \b
    segrt quantize model.onnx --precision fp16
    segrt quantize model.onnx --precision int8                     # ONNX Runtime, CPU
    segrt quantize model.onnx --precision int8 --target tensorrt   # then: segrt build
    """
    from segrt.engines.quantize import QuantizeOptions
    from segrt.evaluation.gate import GateData

    run_quantize(model, QuantizeOptions(precision, target, output, exclude, threshold, force, auto),
                 GateData(dataset, data_root, calib_source, calib_frames, eval_frames, threads))


def run_quantize(model: Path, opts, data) -> Path:
    """`segrt quantize`'s work (also the middle step of `segrt export --precision`): the checks
    on its paths, :func:`segrt.evaluation.gate.quantize_with_gate` with ``opts`` (a
    :class:`segrt.engines.quantize.QuantizeOptions`) and ``data`` (a GateData), and what it
    prints. Returns the file written."""
    _require("onnx", "quantize", "pip install -e '.[quantize]'")
    from segrt.engines.quantize import default_output
    from segrt.evaluation.gate import quantize_with_gate

    if not model.is_file():
        raise SegrtError(f"{shown(model)}: model file not found; export one with 'segrt export CHECKPOINT'")
    if opts.precision == "fp16":  # segrt quantize's and segrt export's calibration options
        unused(given("calib_source", "calib_frames"), "is for INT8 (FP16 needs no calibration)", refuse=False)
    output = opts.output or default_output(model, opts.precision, opts.target)
    check_output_suffix(output, ".onnx")
    calib = data.calib
    check_paths({"MODEL": model, "--data-root": data.data_root,
                 "--calib": calib if calib and Path(calib).exists() else None}, {"--output": output})
    result = quantize_with_gate(model, dataclasses.replace(opts, output=output), data, echo=click.echo)
    if result.output is None:
        raise SegrtError(f"{opts.precision.upper()} loses {-result.gate.delta:.2f} val mIoU points, more than "
                         f"--threshold {opts.threshold:g}; nothing written. Try --auto, --exclude OP_TYPE, "
                         "more --calib-frames, or --force")
    note = " (FORCED past the gate)" if result.gate.forced else ""
    click.echo(f"wrote {result.output} and {result.output.with_suffix('.json')}{note}")
    return result.output


@click.command()
@click.argument("model", type=ONNX_MODEL)
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Engine file [default: MODEL with .engine suffix].")
@click.option("--workspace", type=click.IntRange(min=64), default=2048, show_default=True,
              help="Builder workspace limit, MiB.")
@click.option("--timing-cache", type=click.Path(path_type=Path), default=None,
              help="Timing cache file, reused across builds [default: ~/.cache/segrt/tensorrt/timing.cache].")
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Largest batch of the optimization profile (ONNX exported with --dynamic).")
def build(model: Path, output: Path | None, workspace: int, timing_cache: Path | None, max_batch: int) -> None:
    """Build a TensorRT engine from MODEL.onnx (FP32, or FP16/INT8 from 'segrt quantize').

    A strongly typed network: the precision is the graph's, for TensorRT 10 (Jetson) and 11.
    Writes the engine and its manifest (TensorRT version, GPU, ONNX hash, I/O) and prints the
    equivalent trtexec command. Needs an NVIDIA GPU and TensorRT.
    """
    from segrt.engines.tensorrt_build import build_engine

    if not model.is_file():
        raise SegrtError(f"{shown(model)}: ONNX file not found; export one with 'segrt export CHECKPOINT'")
    if output is not None and output.suffix.lower() not in (".engine", ".plan"):
        raise SegrtError(f"--output {shown(output)}: must end in .engine or .plan")
    check_paths({"MODEL": model}, {"--output": output or model.with_suffix(".engine"),
                                   "--timing-cache": timing_cache})
    build_engine(model, output, workspace, timing_cache, max_batch, echo=click.echo)


@click.command()
@click.argument("models", nargs=-1, type=MODEL)
@click.option("--video", default=None, help="Video for the pipeline FPS [default: none, model-only numbers].")
@click.option("--pipeline-frames", type=click.IntRange(min=10), default=300, show_default=True,
              help="Frames of the video the pipeline runs.")
@click.option("--dataset", type=click.Choice(["camvid", "cityscapes", "folder", "pairs"]), default="camvid",
              show_default=True)
@click.option("--split", default="val", show_default=True)
@data_root_option("Dataset folder [default: $SEGRT_CAMVID, else where 'segrt data camvid' put it].")
@click.option("--eval-frames", type=click.IntRange(min=1), default=None,
              help="Score mIoU on N frames spread over the split [default: all].")
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True,
              help="Second batch size timed besides 1 (needs a model exported with --dynamic).")
@click.option("--runs", type=click.IntRange(min=5), default=100, show_default=True, help="Timed runs at batch 1.")
@click.option("--warmup", type=click.IntRange(min=0), default=20, show_default=True, help="Untimed runs first.")
@click.option("--threads", type=THREADS, default=0, help="Inference threads; 0 = all cores.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "tensorrt"]), default="cpu", show_default=True,
              help="ONNX Runtime provider / torch device; .engine files run on TensorRT.")
@click.option("--sort", type=click.Choice(["fps", "latency", "miou", "name"]), default="latency",
              show_default=True)
@click.option("--baseline", type=MODEL, default=None,
              help="One of the MODELS (as given, by file or shipped name) the speedup column is relative to.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=None,
              help="Where bench.json/.csv/.md/.png go [default: a new runs/bench, runs/bench2, … folder].")
def bench(models: tuple[Path, ...], video: str | None, pipeline_frames: int, dataset: str, split: str,
          data_root: Path | None, eval_frames: int | None, batch: int, runs: int, warmup: int, threads: int,
          device: str, sort: str, baseline: Path | None, out_dir: Path | None) -> None:
    """Latency, pipeline FPS, mIoU, load time, memory and size of every MODEL, side by side.

    MODELS are any mix of .pt checkpoints (PyTorch eager), .onnx (FP32/FP16/INT8 on ONNX
    Runtime), .engine files (TensorRT), shipped model names and models served by Triton
    (triton://HOST:PORT/NAME) [default: the shipped default for --device]. Each runs in its
    own process.

    \b
    segrt bench model.pt model.onnx model.fp16.onnx model.int8.onnx \\
        --video dashcam.mp4 --baseline model.pt
    """
    from segrt.engines.remote import is_remote, model_name
    from segrt.engines.zoo import default_for
    from segrt.evaluation.bench import BenchOptions, flat, markdown, run_bench, sort_rows, write_results

    models = models or (default_for(device),)
    out_dir = out_dir or numbered_folder("bench")
    for m in models:
        if not m.is_file() and not is_remote(m):
            raise SegrtError(f"{shown(m)}: model file not found")
    check_paths({"MODEL": models, "--video": video if video and Path(video).exists() else None,
                 "--data-root": data_root}, {"--out-dir": out_dir})
    if video is not None and not Path(video).exists() and "://" not in video:
        raise SegrtError(f"--video {video}: no such file")
    if baseline is not None:  # the same name or file as one of the models: the table names it by file
        match = [m for m in models if str(m) == str(baseline) or (not is_remote(m) and not is_remote(baseline)
                                                                  and m.resolve() == Path(baseline).resolve())]
        if not match:
            raise SegrtError(f"--baseline {baseline}: not one of the models ({', '.join(m.name for m in models)})")
        baseline = match[0]
    baseline_name = model_name(baseline) if baseline is not None else None
    opts = BenchOptions(video, pipeline_frames, dataset, split, str(data_root) if data_root else None,
                        eval_frames, batch, runs, warmup, threads, device)
    rows = run_bench([str(m) for m in models], opts, echo=click.echo)
    paths = write_results(rows, opts, out_dir, batch, sort, baseline_name)
    click.echo(markdown(sort_rows([flat(r, batch) for r in rows], sort), batch, baseline_name))
    unscored = [r for r in rows if "error" not in r and r.get("miou") is None]
    if unscored:
        click.echo(f"mIoU not measured ({unscored[0]['eval']['not_measured']}); the timings stand")
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))
    if all("error" in r for r in rows):
        raise SegrtError("every model failed; see the messages above")


@click.command("export-triton")
@click.argument("model", type=ModelArg((".onnx", ".engine", ".plan")))
@click.option("--output", "-o", "repo", type=click.Path(path_type=Path), required=True,
              help="Model repository folder (created if missing); the model goes in REPO/NAME/.")
@click.option("--name", default=None, help="Model name on the server [default: the file's stem].")
@click.option("--backend", type=click.Choice(["auto", "onnxruntime", "tensorrt", "python"]), default="auto",
              show_default=True,
              help="auto: onnxruntime for .onnx, tensorrt for .engine; python: ONNX Runtime inside Triton's "
                   "Python backend (servers without the ONNX Runtime backend).")
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="max_batch_size for a model with a free batch (export --dynamic); fixed-batch models get 0.")
@click.option("--delay-us", type=click.IntRange(min=0), default=2000, show_default=True,
              help="Dynamic batcher: longest wait for more requests to merge, microseconds.")
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True,
              help="Model instances Triton runs side by side.")
@click.option("--python-path", default=None, metavar="DIRS",
              help="--backend python: folders put first on the model's sys.path, e.g. one made with pip install "
                   "--target DIR 'numpy<2' onnxruntime (Triton's Python backend stub needs numpy 1.x).")
def export_triton(model: Path, repo: Path, name: str | None, backend: str, max_batch: int, delay_us: int,
                  instances: int, python_path: str | None) -> None:
    """Write a Triton Inference Server model repository for MODEL (.onnx or .engine).

    REPO/NAME/config.pbtxt (platform, max_batch_size, dynamic batching, I/O names, dtypes and
    dims from the manifest, and the manifest itself) and REPO/NAME/1/ with the model and its
    manifest. The config is checked with Triton's own ModelConfig protobuf. Serve the folder
    with tritonserver --model-repository REPO, then: segrt run clip.mp4 --model
    triton://HOST:8000/NAME.
    """
    from segrt.engines.triton_repo import write_repository

    if not model.is_file():
        raise SegrtError(f"{shown(model)}: model file not found; export one with 'segrt export CHECKPOINT'")
    check_paths({"MODEL": model}, {"--output": repo / (name or model.stem)})
    target = write_repository(model, repo, name, backend, max_batch, delay_us, instances, python_path)
    config = (target / "config.pbtxt").read_text()
    files = sorted(p.name for p in (target / "1").iterdir())
    click.echo(f"wrote {target}/: config.pbtxt, 1/{', 1/'.join(files)}")
    click.echo(config.split("parameters")[0].rstrip())  # the manifest parameter is long
    click.echo(f"serve: tritonserver --model-repository {repo}   then: --model triton://HOST:8000/{target.name}")

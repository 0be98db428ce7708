"""The ``segrt`` command line: ``segrt run``, ``demo`` and ``models`` here; the other command
groups in ``cli_*.py`` beside it. Argument parsing lives in these modules and nowhere else."""

from __future__ import annotations

import json
import os
import signal
import sys

# OpenCV's and FFmpeg's own log lines ("[ WARN:0@…]", "[mp4 @ 0x…]") would break the promise
# of one line on stderr; they are read when cv2 is first imported, which happens after this
# (segrt/__init__.py sets OPENCV_FFMPEG_LOGLEVEL for every importer).
# Images over 16384 x 16384 are refused from their header instead of decoded (segrt.images).
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(16384 * 16384))
from pathlib import Path

import click

from segrt import __version__
from segrt.app.options import MODEL, THREADS, data_root_option
from segrt.engines.zoo import default_for
from segrt.errors import SegrtError, Stopped, first_line
from segrt.files import one_line, shown


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="segrt")
@click.option("--debug", is_flag=True, help="Show the full traceback when something fails.")
def cli(debug: bool) -> None:
    """Real-time semantic segmentation for video: train, export, run with overlay and FPS."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def info(as_json: bool) -> None:
    """Versions, this machine, and which backends and GPU are usable (and why not)."""
    from segrt import envinfo
    from segrt.realtime.sinks.window import window_support

    report = {"segrt": __version__, "machine": envinfo.machine(), "gpu": envinfo.gpu(),
              "versions": envinfo.versions(),
              "backends": {k: {"usable": ok, "why": why} for k, (ok, why) in envinfo.backends().items()},
              "window": dict(zip(("usable", "why"), window_support(), strict=True)),
              "default_model": {d: str(default_for(d)) for d in ("cpu", "cuda", "tensorrt")}}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    m = report["machine"]
    click.echo(f"segrt {__version__}  python {m['python']}  {m['platform']}")
    flags = ", ".join(m["cpu_flags"]) or "none of " + ", ".join(envinfo.INT8_FLAGS[:5])
    click.echo(f"cpu      {m['cpu']} ({m['cores']} cores; 8-bit extensions: {flags})")
    g = report["gpu"]
    click.echo(f"gpu      {g['name']} (compute {g['compute_capability']}, driver {g['driver']})"
               if g["name"] else f"gpu      none: {g['why']}")
    click.echo("packages " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    for name, b in [*report["backends"].items(), ("window (--show)", report["window"])]:
        click.echo(f"{name:<16} {'yes' if b['usable'] else 'no ':<4} {b['why']}")


@cli.command()
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option("--model", "-m", type=MODEL, default=None,
              help="Model: .onnx (ONNX Runtime), .engine (TensorRT), .pt, or a shipped model's name such as "
                   "unet_camvid [default: the shipped default for --device; see 'segrt models'].")
@click.option("--output", "-o", multiple=True,
              help="Write the overlay: FILE.mp4/.avi or a folder/ of JPEGs; repeat for several. With several "
                   "sources, {stream} (0, 1, …) or {name} (the source's stem) in it names each stream's file.")
@click.option("--show", is_flag=True, help="Show a window (q quit, space pause, m mode, +/- alpha, s snapshot).")
@click.option("--serve", default=None, metavar="[HOST:]PORT",
              help="Live view in a browser. PORT (or 127.0.0.1:PORT): this machine only, at http://127.0.0.1:PORT/. "
                   "0.0.0.0:PORT: every interface, each request needing the access token printed in the URL.")
@click.option("--serve-token", default=None, envvar="SEGRT_SERVE_TOKEN", metavar="TOKEN",
              help="The live view's access token instead of a random one (16+ of A-Z a-z 0-9 - _ . ~; also "
                   "$SEGRT_SERVE_TOKEN); with it even 127.0.0.1 asks for it.")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Write timings, counts, drops and outages as JSON.")
@click.option("--frames-csv", type=click.Path(path_type=Path), default=None,
              help="Write one CSV row per frame: stage times, frame age, drops so far.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames.")
@click.option("--realtime", is_flag=True, default=None,
              help="Replay a file at its own FPS, dropping frames the way a live camera would.")
@click.option("--realtime-fps", type=click.FloatRange(min=0, min_open=True), default=None, metavar="FPS",
              help="Like --realtime, at this frame rate instead of the file's own (e.g. 30, a camera's).")
@click.option("--loop", is_flag=True, default=None, help="Start a file again at its end.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Run settings YAML, or the name of an installed one (default: configs/run/default.yaml).")
@click.option("--mode", type=click.Choice(["overlay", "mask", "side", "labels"]), default=None,
              help="Blend, colours only, frame and colours side by side [default: overlay]; labels: one PNG of "
                   "class indices per frame into a folder (-o labels/), classes.json beside them.")
@click.option("--classes", default=None, metavar="A,B", help="Colour only these classes, e.g. Road,Car.")
@click.option("--alpha", type=float, default=None, help="Overlay opacity 0..1 [default: 0.5].")
@click.option("--palette", type=click.Choice(["model", "contrast"]), default=None,
              help="Class colours: the model's own (CamVid's) or high-contrast [default: model].")
@click.option("--legend/--no-legend", default=None, help="Draw the class legend [default: on].")
@click.option("--hud/--no-hud", default=None, help="Draw FPS and latency [default: on].")
@click.option("--steady/--no-steady", default=None,
              help="Steadier labels: each pixel's label is the median of 3 frames in time, its neighbours moved "
                   "along the optical flow (21-36 % less flicker on held-out clips; cars, people and cyclists "
                   "left as they are; one frame of latency) "
                   "[default: off].")
@click.option("--threads", type=THREADS, default=None,
              help="ONNX Runtime threads per model call; 0 = the cores, split between the workers.")
@click.option("--workers", type=click.IntRange(0, 64), default=None,
              help="Model calls at once, each on its own thread (ONNX models on CPU); 0 = 2 where there are 2+ "
                   "cores, which outruns one call on every core [default: 0].")
@click.option("--device", type=click.Choice(["cpu", "cuda", "tensorrt"]), default=None,
              help="cpu/cuda: ONNX Runtime's provider for .onnx (torch's device for .pt); tensorrt: a .onnx is built "
                   "into a TensorRT engine on first use and cached [default: cpu]. A .engine is always TensorRT.")
@click.option("--rebuild", is_flag=True, default=None,
              help="Build the TensorRT engine again (a cached one, or a .engine made for another TensorRT or GPU).")
@click.option("--width", "camera_width", type=click.IntRange(min=0), default=None, help="Webcam: frame width.")
@click.option("--height", "camera_height", type=click.IntRange(min=0), default=None, help="Webcam: frame height.")
@click.option("--fps", "camera_fps", type=click.FloatRange(min=0), default=None, help="Webcam: frame rate.")
@data_root_option("CamVid folder for camvid: sources.")
@click.option("--progress/--no-progress", default=None,
              help="Live status line [default: on a terminal].")
@click.option("--no-save", is_flag=True,
              help="Without -o, write nothing (benchmarking) instead of saving under runs/.")
@click.option("--max-batch", type=click.IntRange(min=1), default=None,
              help="Several sources: most frames of different streams per model call [default: 8; 1 where the "
                   "model's batch is fixed].")
def run(sources: tuple[str, ...], model: Path | None, output: tuple[str, ...], show: bool, serve: str | None,
        serve_token: str | None,
        report: Path | None, frames_csv: Path | None, max_frames: int | None, realtime: bool | None,
        loop: bool | None, config_path: Path | None, mode: str | None, classes: str | None,
        alpha: float | None, legend: bool | None, hud: bool | None, threads: int | None, device: str | None,
        palette: str | None, rebuild: bool | None, camera_width: int | None, camera_height: int | None,
        camera_fps: float | None, data_root: Path | None, progress: bool | None, no_save: bool,
        max_batch: int | None, realtime_fps: float | None, workers: int | None, steady: bool | None) -> None:
    """Segment SOURCE frame by frame with a colour overlay, and time every stage.

    SOURCE is a video file, a stream URL (rtsp://, http://), an image folder,
    camvid:SPLIT[/SEQUENCE] (e.g. camvid:val/0016E5), a webcam index (0) or /dev/videoN,
    or a GStreamer pipeline ending in appsink. Several sources run as streams of one
    process sharing the model, their frames batched into one model call where it can.

    \b
    segrt run dashcam.mp4 --output overlay.mp4 --report run.json
    segrt run cam0.mp4 cam1.mp4 -o out_{stream}.mp4 --report run.json
    segrt run 0 --show --serve 0.0.0.0:8080
    segrt run rtsp://camera/stream --serve 8080 --output recording.mp4

    Without -o, --show or --serve, a file, folder or CamVid source is saved as an H.264 mp4
    in a new numbered folder under runs/ ($SEGRT_RUNS_DIR; runs/run, runs/run2, …, relative to
    where you run it) and the path is printed; --no-save writes nothing.

    A live stream that stops or goes silent is reopened (waits doubling from 0.5 s to 8 s);
    a dead one ends the run within 30 s, keeping what was written (reconnect_timeout and
    reconnect_attempts in a run config change that).
    """
    from segrt.realtime.run import RunRequest, default_output, run_app, specs, stream_outputs
    from segrt.realtime.sinks.access import check_token

    if serve_token is not None and serve:
        check_token(serve_token)  # before the model loads
    elif serve_token is not None and click.get_current_context().get_parameter_source("serve_token") == \
            click.core.ParameterSource.COMMANDLINE:  # from $SEGRT_SERVE_TOKEN it waits for a --serve
        raise SegrtError("--serve-token is for the live view: add --serve PORT (or 0.0.0.0:PORT)")
    overrides = {"alpha": alpha, "palette": palette, "legend": legend, "hud": hud, "threads": threads, "device": device,
                 "rebuild": rebuild, "mode": mode, "realtime": realtime, "loop": loop,
                 "classes": tuple(c.strip() for c in classes.split(",") if c.strip()) if classes else None,
                 "camera_width": camera_width, "camera_height": camera_height, "camera_fps": camera_fps,
                 "max_batch": max_batch, "realtime_fps": realtime_fps, "workers": workers,
                 "steady": steady}
    if config_path is not None and not config_path.exists() and len(config_path.parts) == 1:
        from importlib import resources  # a name: the run settings installed with the package

        name = config_path.name.removesuffix(".yaml")
        installed = Path(str(resources.files("segrt.configs"))) / "run" / f"{name}.yaml"
        config_path = installed if installed.is_file() else config_path
    parsed = specs(sources)  # once: naming, outputs and opening all read these
    saved = None
    if not (output or show or serve or no_save):
        saved = default_output(parsed)
        if saved is not None and mode == "labels":  # label maps go to a folder of PNGs: runs/runN/NAME/
            saved = f"{saved.with_suffix('')}/"
    result = run_app(RunRequest.of(
        parsed, model or default_for(device), [*output, *([str(saved)] if saved else [])], show=show, report=report,
        frames_csv=frames_csv, max_frames=max_frames, config_path=config_path, overrides=overrides,
        data_root=data_root, progress=progress, serve=serve, serve_token=serve_token))
    click.echo(result)
    if saved is not None:
        for outs in stream_outputs(parsed, [str(saved)]):
            if Path(outs[0]).exists():
                click.echo(f"saved {outs[0]} (--no-save to write nothing, -o to choose)")
    exit_if_stopped(result)


def exit_if_stopped(result) -> None:
    """A run that Ctrl-C or SIGTERM ended early kept what it wrote (every output whole, the
    report marked "interrupted"), and still exits 130 or 143, as a stopped command does."""
    signum = getattr(result, "signum", None)
    if signum is not None:
        what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        click.echo(f"interrupted by {what}: the outputs hold every frame up to then", err=True)
        sys.exit(128 + signum)


@cli.command()
@click.option("--device", type=click.Choice(["cpu", "cuda", "tensorrt"]), default="cpu", show_default=True,
              help="Where to run; picks the shipped default for it.")
@click.option("--output", "-o", default=None,
              help="Overlay video [default: runs/runN/CLIP.mp4, CLIP the clip's name: solidWhiteRight, or "
                   "$SEGRT_DEMO_VIDEO's].")
@click.option("--palette", type=click.Choice(["model", "contrast"]), default=None, help="Class colours.")
@click.option("--steady", is_flag=True, default=None,
              help="Steadier labels: each pixel's label the median of 3 frames in time (see segrt run --steady).")
def demo(device: str, output: str | None, palette: str | None, steady: bool | None) -> None:
    """The shipped default model on a real dashcam clip: overlay video, report and stage table.

    The clip (udacity/CarND-LaneLines-P1 test_videos/solidWhiteRight.mp4, MIT) is downloaded
    once into ~/.cache/segrt and checked by SHA-256, or taken from $SEGRT_DEMO_VIDEO.
    """
    from segrt.datasets.fetch import demo_video
    from segrt.realtime.run import RunRequest, default_output, run_app, specs, stream_outputs

    video = specs(str(demo_video()))
    out = Path(stream_outputs(video, [output or str(default_output(video))])[0][0])
    report = out.with_suffix(".json")
    made = not out.parent.exists()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        table = run_app(RunRequest.of(video, default_for(device), str(out), report=report,
                                      overrides={"device": device, "palette": palette, "steady": steady}))
    except BaseException:
        if made and not any(out.parent.iterdir()):
            out.parent.rmdir()
        raise
    click.echo(table)
    click.echo(f"saved {out} and {report} (model {default_for(device).name}, clip {video[0].uri})")
    exit_if_stopped(table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--time", "timed", is_flag=True,
              help="Also time each ONNX model here (ONNX Runtime, 2 threads, batch 1, median of 20 runs; "
                   "about a second a model).")
def models(as_json: bool, timed: bool) -> None:
    """The shipped models: val mIoU, input size, precision, size, and which is the default
    where; with --time, their latency on this machine's CPU.

    Val mIoU is CamVid val scored at 480x360 (the manifest's, or for a quantized file its
    accuracy gate's; for a model trained on train+val, as the GPU default is, its train-only
    twin's). Pass a name from here to --model (segrt run VIDEO -m unet_camvid).
    """
    from segrt.engines.zoo import listing, zoo_dir

    rows = listing()
    for r in rows:
        r["cpu_ms"] = _cpu_ms(zoo_dir() / r["file"]) if timed and r["file"].endswith(".onnx") else None
    if as_json:
        click.echo(json.dumps({"folder": str(zoo_dir()), "models": rows}, indent=2))
        return
    cpu = f" {'CPU ms':>7}" if timed else ""
    width = max([len("name"), *(len(r["name"]) for r in rows)])
    click.echo(f"{'name':{width}} {'precision':16} {'input':8} {'val mIoU':>8}{cpu} {'MB':>5}  default")
    for r in rows:
        miou = f"{100 * r['val_miou']:.1f}" if r["val_miou"] is not None else "–"
        ms = (f" {r['cpu_ms']:>7.1f}" if r["cpu_ms"] is not None else f" {'–':>7}") if timed else ""
        precision = " + ".join(filter(None, (r["precision"] or "–", r["tta"])))  # fp32 + flip: TTA in the graph
        click.echo(f"{r['name']:{width}} {precision:16} {r['input'] or '–':8} {miou:>8}{ms} {r['mb']:>5}  "
                   f"{', '.join(r['default_for'])}")
    click.echo(f"(files in {zoo_dir()}" + ("; CPU ms: model alone on this machine, ONNX Runtime, 2 threads)"
                                            if timed else "; --time adds their CPU latency here)"))


def _cpu_ms(path: Path, runs: int = 20) -> float | None:
    from segrt.engines.base import open_backend
    from segrt.evaluation.latency import measure_latency

    try:
        with open_backend(path, threads=2) as net:
            return round(measure_latency(net, runs=runs, warmup=3)["p50_ms"], 2)
    except SegrtError:
        return None


from segrt.app.cli_batch import batch  # noqa: E402  (commands defined there)
from segrt.app.cli_data import data  # noqa: E402
from segrt.app.cli_engines import bench, build, export_triton, quantize  # noqa: E402
from segrt.app.cli_eval import evaluate  # noqa: E402
from segrt.app.cli_train import export, pseudo_label, train, zoo  # noqa: E402

for _command in (data, evaluate, train, export, zoo, quantize, build, bench, export_triton, batch, pseudo_label):
    cli.add_command(_command)

SHORT_HELP = {
    "batch": "Many video files through the run loop, locally or on a Ray cluster.",
    "bench": "Latency, pipeline FPS, mIoU, memory and size of model files, side by side.",
    "build": "Build a TensorRT engine from an ONNX file (TensorRT 10 and 11).",
    "data": "Download or import datasets and verify them.",
    "demo": "The shipped default on a real dashcam clip (downloaded once).",
    "eval": "mIoU and per-class IoU on a dataset split; plots, compare, flicker.",
    "export": "Checkpoint → ONNX with the argmax inside, plus its manifest.",
    "export-triton": "A Triton Inference Server model repository for an ONNX file or engine.",
    "info": "Versions, this machine, and which backends are usable here.",
    "models": "The shipped models, their accuracy, and the default per device.",
    "pseudo-label": "Label unlabeled driving clips with a teacher, for self-training.",
    "quantize": "FP16 or INT8 ONNX behind a val-mIoU accuracy gate.",
    "run": "Segment a video, stream, camera or folder with overlay and FPS.",
    "train": "Train a model from a YAML recipe; resume exactly.",
    "zoo": "Train, ship, measure and tabulate the model zoo recipes.",
}
for _name, _text in SHORT_HELP.items():
    cli.commands[_name].short_help = _text


def main(argv: list[str] | None = None) -> None:
    """Entry point: errors become one line on stderr (exit 2 for bad input, 1 for a bug) and no
    traceback, unless ``segrt --debug …``."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args[:1] or "--debug" in args
    from segrt.signals import signal_cleanup

    try:
        with signal_cleanup():
            cli.main(args=args, prog_name="segrt", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: interrupted (Ctrl-C); unfinished outputs were removed", err=True)
        sys.exit(130)
    except Stopped as exc:  # SIGTERM, SIGHUP: temporaries already removed on the way here
        what = "interrupted (Ctrl-C)" if exc.signum == signal.SIGINT else f"stopped by {exc.name}"
        click.echo(f"error: {what}; unfinished outputs were removed", err=True)
        sys.exit(exc.code)
    except click.exceptions.UsageError as exc:  # one line, like every other error
        where = exc.ctx.command_path if exc.ctx is not None else "segrt"
        click.echo(f"error: {one_line(exc.format_message())} (see '{where} --help')", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SegrtError as exc:
        if debug:
            raise
        click.echo(f"error: {one_line(str(exc))}", err=True)
        sys.exit(2)
    except OSError as exc:  # disk full, permission denied, … on a path the user gave
        if debug:
            raise
        where = f"{shown(exc.filename)}: " if exc.filename else ""
        click.echo(f"error: {where}{exc.strerror or exc}; check the path, free space and permissions", err=True)
        sys.exit(2)
    except RecursionError:  # a structure nested beyond reason in a file the user gave
        click.echo("error: an input file is nested too deeply (a YAML or JSON bomb?); check the files given",
                   err=True)
        sys.exit(2)
    except MemoryError:
        click.echo("error: out of memory; an input is far larger than expected (check the sizes of the files "
                   "and images given)", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001  a bug: say so in one line, traceback on request
        if debug:
            raise
        first = first_line(exc) if str(exc).strip() else ""
        click.echo(f"internal error: {type(exc).__name__}: {first}; re-run with 'segrt --debug …' for the "
                   "traceback and please report it", err=True)
        sys.exit(1)

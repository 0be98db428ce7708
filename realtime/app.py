"""``segrt run``: wires a source, a backend, sinks and the overlay together, and reports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from segrt import envinfo
from segrt.api import Segmenter
from segrt.config import from_dict, load_config
from segrt.errors import SegrtError
from segrt.files import check_paths, is_special, shown, write_text_atomic
from segrt.realtime.capture import Reconnect
from segrt.realtime.config import RunConfig
from segrt.realtime.loop import run_loop
from segrt.realtime.sinks import open_sink, sink_kind
from segrt.realtime.sources import open_source
from segrt.realtime.timing import format_table


def run_app(source_uri: str, model: Path, outputs: list[str] | str | None, show: bool, report: Path | None,
            max_frames: int | None = None, config_path: Path | None = None,
            overrides: dict | None = None, data_root: Path | None = None,
            progress: bool | None = None, serve: str | None = None, frames_csv: Path | None = None) -> str:
    """Runs the loop; writes the report if asked; returns the end-of-run table. Ctrl-C and
    SIGTERM, from the start to the written report, end the run after the frame in hand with
    every output and the report complete."""
    with _signals_stop() as interrupt:
        return _run_app(source_uri, model, outputs, show, report, max_frames, config_path, overrides, data_root,
                        progress, serve, frames_csv, interrupt)


def _run_app(source_uri: str, model: Path, outputs: list[str] | str | None, show: bool, report: Path | None,
             max_frames: int | None, config_path: Path | None, overrides: dict | None, data_root: Path | None,
             progress: bool | None, serve: str | None, frames_csv: Path | None,
             interrupt: threading.Event) -> str:
    overrides = overrides or {}
    outputs = [outputs] if isinstance(outputs, str) else list(outputs or [])
    files = [o for o in outputs if o not in ("null", "window")]
    check_paths({"SOURCE": source_uri if Path(source_uri).exists() else None, "--model": model,
                 "--config": config_path},
                {"--output": files, "--report": report, "--frames-csv": frames_csv})
    for flag, path in (("--report", report), ("--frames-csv", frames_csv)):
        if path is not None and not is_special(path) and not Path(path).parent.is_dir():
            raise SegrtError(f"{flag} {shown(path)}: folder {shown(Path(path).parent)} does not exist; create it "
                             "first")
        if path is not None and Path(path).is_dir():
            raise SegrtError(f"{flag} {shown(path)} is a folder; give a file name")
    if config_path is not None:
        cfg = load_config(config_path, RunConfig, overrides)
    else:
        given = {k: v for k, v in overrides.items() if v is not None}
        cfg = from_dict(RunConfig, given, source="command-line options")

    with ExitStack() as stack:
        seg = stack.enter_context(Segmenter(
            model, device=cfg.device, threads=cfg.threads, alpha=cfg.alpha, palette=cfg.palette, rebuild=cfg.rebuild,
            legend=cfg.legend, hud=cfg.hud, mode=cfg.mode, classes=cfg.classes))
        backend, m, overlay = seg.backend, seg.manifest, seg.renderer
        source = stack.enter_context(open_source(
            source_uri, data_root=data_root, fps=cfg.image_fps, width=cfg.camera_width,
            height=cfg.camera_height, camera_fps=cfg.camera_fps))
        fps = source.fps or cfg.image_fps
        sinks = [stack.enter_context(open_sink(sink_kind(o), o, fps=fps)) for o in outputs]
        file_sinks = list(zip(outputs, sinks, strict=True))
        if show:
            sinks.append(stack.enter_context(open_sink("window")))
        if serve:
            sinks.append(stack.enter_context(open_sink("serve", serve, max_fps=cfg.serve_fps)))
            print(f"live view: {sinks[-1].url}", file=sys.stderr, flush=True)
        if not sinks:
            sinks.append(stack.enter_context(open_sink("null")))
        reconnect = Reconnect(cfg.reconnect_attempts, max_wait=cfg.reconnect_max_wait)
        # a file shown in a browser plays at its own frame rate, and its last frame and final
        # numbers stay up until Ctrl-C (a file that ends before a browser connects shows nothing)
        linger = bool(serve) and not source.live and not cfg.loop
        realtime = cfg.realtime if overrides.get("realtime") is not None or config_path else (cfg.realtime or linger)
        result = run_loop(source, backend, sinks, overlay, max_frames, progress, realtime=realtime,
                          loop=cfg.loop, reconnect=reconnect, frames_csv=frames_csv, interrupt=interrupt)
        if linger and result.stopped_by in ("end", "max_frames"):
            for _, sink in file_sinks:  # the outputs are complete: finalize them now
                sink.__exit__(None, None, None)
            sinks[-1].finished = True
            print(f"finished: {result.frames_out} frames; still serving the last frame and the numbers at "
                  f"{sinks[-1].url} until Ctrl-C", file=sys.stderr, flush=True)
            while not interrupt.wait(0.2):
                pass
        source_info = {"uri": source_uri, "fps": source.fps, "frame_count": source.frame_count,
                       "live": bool(source.live)}

    summary = result.timer.summary()
    wall = result.timer.wall_seconds
    fps_out = result.frames_out / wall if wall > 0 else 0.0
    infer_ms = summary.get("infer", {}).get("mean_ms", 0.0)
    ages = np.asarray(result.ages_ms) if result.ages_ms else np.zeros(1)
    doc = {
        "frames_in": result.frames_in,
        "frames_out": result.frames_out,
        "captured": result.captured,
        "dropped": result.dropped,
        "fps": round(fps_out, 3),
        "model_fps": round(1000.0 / infer_ms, 3) if infer_ms else None,
        "fps_ratio": round(fps_out * infer_ms / 1000.0, 3) if infer_ms else None,
        "wall_s": round(wall, 3),
        "stopped_by": result.stopped_by,
        "frame_age_ms": {"mean": round(float(ages.mean()), 3), "p50": round(float(np.percentile(ages, 50)), 3),
                         "p95": round(float(np.percentile(ages, 95)), 3), "max": round(float(ages.max()), 3)},
        "outages": result.outages,
        "capture_error": result.error,
        "stages": summary,
        "source": source_info,
        "outputs": [o for o, sink in file_sinks if (getattr(sink, "frames_whole", None) or 0) > 0
                    or o in ("null", "window")],
        "output_frames": {o: getattr(sink, "frames_whole", None) for o, sink in file_sinks},
        "output_codecs": {o: sink.codec for o, sink in file_sinks if getattr(sink, "codec", None)},
        "write_error": result.write_error, "serve": serve, "frames_csv": str(frames_csv) if frames_csv else None,
        "model": {"path": str(model), "name": m.name, "architecture": m.architecture,
                  "precision": m.precision, "sha256": m.model_sha256,
                  "input": [m.preprocess.width, m.preprocess.height]},
        "backend": {"name": backend.name, "threads": cfg.threads, "device": cfg.device},
        "config": {"palette": cfg.palette, "alpha": cfg.alpha, "legend": cfg.legend, "hud": cfg.hud, "mode": cfg.mode,
                   "classes": list(cfg.classes), "realtime": cfg.realtime, "loop": cfg.loop},
        "machine": envinfo.machine(),
        "versions": envinfo.versions(),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
    }
    expected = source_info["frame_count"]
    truncated = (result.stopped_by == "end" and not source_info["live"] and not cfg.loop and expected
                 and result.captured < expected - max(2, expected // 100))
    write_error = result.write_error or next(  # a sink that found its file incomplete on closing
        (f"--output {shown(o)}: {sink.error}" for o, sink in file_sinks if getattr(sink, "error", None)), None)
    doc["write_error"] = write_error
    doc["truncated"] = bool(truncated or write_error)
    if report is not None:
        write_text_atomic(report, json.dumps(doc, indent=2) + "\n", "report")
    if write_error:
        kept = ", ".join(f"{shown(o)} ({n or 0} frames)" for o, n in doc["output_frames"].items())
        raise SegrtError(f"{write_error}; the run stopped after {result.frames_out} frames and no "
                         f"incomplete output was kept ({kept})")
    dead = [o for o in result.outages if not o["recovered"]]
    if dead and result.stopped_by == "end":
        raise SegrtError(f"{shown(source_uri)}: the stream stayed dead after {dead[-1]['attempts']} reconnect attempts "
                         f"({dead[-1]['seconds']:.0f} s); the {result.frames_out} frames before the outage were "
                         "written. Check the camera or server, or raise reconnect_attempts in the run config")
    if result.frames_out == 0 and result.stopped_by == "end" and result.exception is None:
        raise SegrtError(f"{shown(source_uri)}: the source gave no frames; nothing was written. Check that it "
                         "plays (e.g. with ffplay) or re-copy it")
    kept = [shown(o) for o in doc["outputs"] if o not in ("null", "window")]
    where = f" to {', '.join(kept)}" if kept else ""
    if isinstance(result.exception, SegrtError):  # e.g. an unreadable image in a folder
        done = (f"after {result.frames_out} frames, which were written{where}" if result.frames_out and kept
                else f"after {result.frames_out} frames" if result.frames_out else "nothing was written")
        raise SegrtError(f"{result.exception} ({done})")
    if result.exception is not None:
        raise SegrtError(f"{shown(source_uri)}: reading failed after {result.frames_out} frames ({result.error})"
                         + (f"; those frames were written{where}" if kept else ""))
    if truncated:
        raise SegrtError(f"{shown(source_uri)}: the video ended after {result.captured} of its {expected} frames "
                         f"(truncated or corrupt); those frames were processed{' and written' + where if kept else ''}."
                         " Re-copy the file")
    table = format_table(summary, result.frames_out, wall)
    if result.dropped or source_info["live"] or cfg.realtime:
        table += (f"\nlive: {result.captured} captured, {result.dropped} dropped, frame age p50 "
                  f"{doc['frame_age_ms']['p50']:.0f} ms, max {doc['frame_age_ms']['max']:.0f} ms")
    for o in result.outages:
        table += (f"\nstream outage at {o['start_s']:.1f} s: {o['seconds']:.1f} s, {o['attempts']} reconnect "
                  f"attempts, {'recovered' if o['recovered'] else 'gave up'}")
    if result.error:
        table += f"\nsource error: {result.error}"
    if result.stopped_by not in ("end", "max_frames"):
        table += f"\nstopped by {result.stopped_by}; everything up to that frame was written"
    return table


def default_output(source_uri: str) -> Path | None:
    """Where ``segrt run`` saves without -o: ``runs/run/NAME.mp4`` in the first free numbered
    folder (``runs/run``, ``runs/run2``, …; ``$SEGRT_RUNS_DIR`` instead of ``runs``), for
    sources that end (files, folders, CamVid); None for cameras and streams."""
    from segrt.realtime.sources import parse_source
    from segrt.realtime.sources.video import is_gstreamer, is_network

    try:
        kind, arg = parse_source(source_uri)
    except SegrtError:
        return None  # run_app reports the bad source
    if kind not in ("file", "folder", "camvid") or is_network(arg) or is_gstreamer(arg):
        return None
    stem = Path(arg.rstrip("/")).stem if kind != "camvid" else "camvid_" + arg.replace("/", "_")
    base = Path(os.environ.get("SEGRT_RUNS_DIR") or "runs")
    for i in range(1, 100000):
        folder = base / ("run" if i == 1 else f"run{i}")
        if not folder.exists():
            return folder / f"{stem or 'overlay'}.mp4"
    raise SegrtError(f"{base}: no free runs/runN folder; clean up {base}")


@contextlib.contextmanager
def _signals_stop():
    """Ctrl-C (SIGINT) and SIGTERM (systemd, docker stop, kill) end the run after the frame in
    hand: outputs finalized, report written. A second Ctrl-C interrupts at once. Only the main
    thread can install handlers; elsewhere the event is simply never set."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield event
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)

"""``segrt run``: wires a source, a backend, sinks and the overlay together, and reports."""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path

from segrt import envinfo
from segrt.config import from_dict, load_config
from segrt.engines.base import open_backend
from segrt.errors import SegrtError
from segrt.realtime.config import RunConfig
from segrt.realtime.loop import run_loop
from segrt.realtime.overlay import Overlay
from segrt.realtime.sinks import open_sink, sink_kind
from segrt.realtime.sources import open_source
from segrt.realtime.timing import format_table


def run_app(source_uri: str, model: Path, output: str | None, show: bool, report: Path | None,
            max_frames: int | None = None, config_path: Path | None = None,
            overrides: dict | None = None, data_root: Path | None = None,
            progress: bool | None = None) -> str:
    """Runs the loop; writes the report if asked; returns the end-of-run table."""
    overrides = overrides or {}
    if config_path is not None:
        cfg = load_config(config_path, RunConfig, overrides)
    else:
        given = {k: v for k, v in overrides.items() if v is not None}
        cfg = from_dict(RunConfig, given, source="command-line options")
    if output and _same_file(output, source_uri):
        raise SegrtError(f"--output {output} is the input video; choose another file name")
    if report is not None and not report.parent.is_dir():
        raise SegrtError(f"--report {report}: folder {report.parent} does not exist; create it first")

    with ExitStack() as stack:
        backend = stack.enter_context(open_backend(
            model, threads=cfg.threads, device=cfg.device, rebuild=cfg.rebuild))
        source = stack.enter_context(open_source(source_uri, data_root=data_root, fps=cfg.image_fps))
        fps = source.fps or cfg.image_fps
        sinks = []
        if output:
            sinks.append(stack.enter_context(open_sink(sink_kind(output), output, fps=fps)))
        if show:
            sinks.append(stack.enter_context(open_sink("window")))
        if not sinks:
            sinks.append(stack.enter_context(open_sink("null")))
        m = backend.manifest
        overlay = Overlay(m.classes, m.palette, cfg.alpha, cfg.legend, cfg.hud)
        result = run_loop(source, backend, sinks, overlay, max_frames, progress)
        source_info = {"uri": source_uri, "fps": source.fps, "frame_count": source.frame_count}

    summary = result.timer.summary()
    wall = result.timer.wall_seconds
    doc = {
        "frames_in": result.frames_in,
        "frames_out": result.frames_out,
        "fps": round(result.frames_out / wall, 3) if wall > 0 else 0.0,
        "wall_s": round(wall, 3),
        "stopped_by": result.stopped_by,
        "stages": summary,
        "source": source_info,
        "output": output,
        "model": {"path": str(model), "name": m.name, "architecture": m.architecture,
                  "precision": m.precision, "sha256": m.model_sha256,
                  "input": [m.preprocess.width, m.preprocess.height]},
        "backend": {"name": backend.name, "threads": cfg.threads, "device": cfg.device},
        "config": {"alpha": cfg.alpha, "legend": cfg.legend, "hud": cfg.hud},
        "machine": envinfo.machine(),
        "versions": envinfo.versions(),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
    }
    if report is not None:
        tmp = report.with_name(report.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, report)
    table = format_table(summary, result.frames_out, wall)
    if result.stopped_by not in ("end", "max_frames"):
        table += f"\nstopped by {result.stopped_by}; everything up to that frame was written"
    return table


def _same_file(output: str, source: str) -> bool:
    try:
        return Path(output).resolve() == Path(source).resolve()
    except OSError:
        return False

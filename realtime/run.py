"""``segrt run``: wires a source, a backend, sinks and the overlay together, and reports."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from segrt.checks import check_paths, check_writable
from segrt.config import from_dict, load_config
from segrt.engines.base import check_input_budget
from segrt.errors import SegrtError
from segrt.files import is_special, runs_dir, shown, write_text_atomic
from segrt.realtime.api import Segmenter
from segrt.realtime.capture import Reconnect
from segrt.realtime.config import RunConfig
from segrt.realtime.loop import LoopOptions, run_loop
from segrt.realtime.report import finish, run_report
from segrt.realtime.sinks import open_sink, sink_kind
from segrt.realtime.sources import SourceSpec, open_source, source_spec
from segrt.realtime.stream import Stream, model_batch_limit, plan_workers


@dataclass(frozen=True)
class RunRequest:
    """What one ``segrt run`` asks for: its inputs, outputs and settings, carried down whole."""

    sources: tuple[SourceSpec, ...]  # parsed once, here; everything below reads the specs
    model: Path
    outputs: tuple[str, ...] = ()    # files or folders (``{stream}``/``{name}`` per stream), "null", "window"
    show: bool = False
    report: Path | None = None
    frames_csv: Path | None = None
    max_frames: int | None = None
    config_path: Path | None = None  # the run settings YAML; ``overrides`` (flags) win over it
    overrides: Mapping[str, object] = field(default_factory=dict)
    data_root: Path | None = None
    progress: bool | None = None
    serve: str | None = None
    serve_token: str | None = None   # what every request to the live view must carry (access.Access)

    @classmethod
    def of(cls, sources: str | SourceSpec | Sequence[str | SourceSpec], model: Path,
           outputs: str | Sequence[str] | None = (), **kw: object) -> "RunRequest":
        """A request from loose values: one source or several (URIs or parsed specs), one
        output or several."""
        return cls(specs(sources), model,
                   tuple([outputs] if isinstance(outputs, str) else outputs or ()), **kw)  # type: ignore[arg-type]


def specs(sources: str | SourceSpec | Sequence[str | SourceSpec]) -> tuple[SourceSpec, ...]:
    """One source or several, each parsed once (a one-line error for a source that names nothing)."""
    return tuple(source_spec(u) for u in ([sources] if isinstance(sources, (str, SourceSpec)) else sources))


def run_app(request: RunRequest) -> "RunSummary":
    """Runs the loop on one source or several (one stream each, sharing the model); writes the
    report if asked; returns the end-of-run table. Ctrl-C and SIGTERM, from the start to the
    written report, end the run after the frame in hand with every output and the report
    complete (the summary says which signal)."""
    with _signals_stop() as interrupt:
        return _run_app(request, interrupt)


def stream_outputs(sources: Sequence[SourceSpec], outputs: Sequence[str]) -> list[list[str]]:
    """Each source's outputs: ``{stream}`` (0-based index) and ``{name}`` (the source's stem)
    filled in. With several sources every file output needs one of them."""
    names = [spec.name for spec in sources]
    if len(sources) > 1:
        for o in outputs:
            if o not in ("null", "window") and "{stream}" not in o and "{name}" not in o:
                raise SegrtError(f"--output {shown(o)}: with {len(sources)} sources each output needs {{stream}} or "
                                 "{name} in its name, e.g. -o out_{stream}.mp4")
    return [[o.replace("{stream}", str(i)).replace("{name}", names[i]) for o in outputs]
            for i in range(len(sources))]


def _run_app(req: RunRequest, interrupt: threading.Event) -> "RunSummary":
    cfg, per_stream = _checked(req)
    from segrt.engines.zoo import resolve_model

    workers, threads = plan_workers(cfg.workers, cfg.threads, resolve_model(req.model), cfg.device)
    labels = cfg.mode == "labels"
    view_mode = "overlay" if labels else cfg.mode  # what the overlay would draw; nothing is drawn for labels
    with ExitStack() as stack:
        seg = stack.enter_context(Segmenter(
            req.model, device=cfg.device, threads=threads, alpha=cfg.alpha, palette=cfg.palette,
            rebuild=cfg.rebuild, legend=cfg.legend, hud=cfg.hud, mode=view_mode, classes=cfg.classes))
        files = stack.enter_context(ExitStack())  # the output files' sinks, closed once, here or on the way out
        streams, file_sinks, server = _open_streams(stack, files, req, cfg, seg, per_stream)
        realtime = cfg.realtime or bool(cfg.realtime_fps)
        max_batch, batching_why = model_batch_limit(seg.backend, cfg.max_batch if len(streams) > 1 else 1)
        if max_batch * workers > 1:  # batches and calls at once multiply what one frame needs
            check_input_budget(req.model, seg.backend.manifest, batch=max_batch * workers)
        opts = LoopOptions(
            max_frames=req.max_frames, progress=req.progress, realtime=realtime, realtime_fps=cfg.realtime_fps,
            # a file shown in a browser plays at its own frame rate, every frame of it (a viewer
            # never costs a frame; only --realtime drops)
            loop=cfg.loop, paced=bool(req.serve) and not realtime,
            reconnect=Reconnect(cfg.reconnect_attempts, max_wait=cfg.reconnect_max_wait,
                                timeout=cfg.reconnect_timeout),
            frames_csv=req.frames_csv, max_batch=max_batch, batch_wait_s=cfg.batch_wait_ms / 1000.0,
            workers=workers, steady=cfg.steady)
        result = run_loop(streams, seg.backend, opts, interrupt=interrupt)
        stopped = getattr(interrupt, "signum", None) if result.stopped_by == "interrupt" else None
        infos = [{"uri": spec.uri, "fps": s.source.fps, "frame_count": s.source.frame_count,
                  "live": bool(s.source.live)} for spec, s in zip(req.sources, streams, strict=True)]
        doc = None
        if server is not None and not cfg.loop and not any(s.source.live for s in streams) \
                and result.stopped_by in ("end", "max_frames"):
            # a file in the browser has ended: its outputs and report are final now; then the
            # last frame and the numbers stay up until Ctrl-C
            files.close()
            doc = _write_report(req, result, infos, file_sinks, seg, cfg, stopped, batching_why)
            _linger(server, result.frames_out, interrupt)
    doc = doc or _write_report(req, result, infos, file_sinks, seg, cfg, stopped, batching_why)
    return RunSummary(finish(result, doc, infos, file_sinks, cfg), stopped)


def _write_report(req: RunRequest, result, infos: list[dict], file_sinks: list, seg: Segmenter, cfg: RunConfig,
                  stopped: int | None, batching_why: str) -> dict:
    """The run's report (written to --report if asked): counts, timings, outputs, and the
    signal (``stopped``) that ended it early, if one did."""
    doc = run_report(result, infos, file_sinks, seg.backend, cfg, req.model, req.serve, req.frames_csv)
    doc["interrupted"] = None if stopped is None else signal.Signals(stopped).name
    if len(result.streams) > 1:
        doc["batching"] = {**result.batching, "why": batching_why}
    if req.report is not None:
        write_text_atomic(req.report, json.dumps(doc, indent=2) + "\n", "report")
    return doc


def _checked(req: RunRequest) -> tuple[RunConfig, list[list[str]]]:
    """The run's settings and each stream's outputs, after every check that needs no model:
    outputs against inputs, writable folders, settings in range, label-map outputs."""
    per_stream = stream_outputs(req.sources, req.outputs)
    files = [o for outs in per_stream for o in outs if o not in ("null", "window")]
    check_paths({"SOURCE": [spec.arg for spec in req.sources if spec.kind in ("file", "folder")
                            and Path(spec.arg).exists()], "--model": req.model,
                 "--config": req.config_path},
                {"--output": files, "--report": req.report, "--frames-csv": req.frames_csv})
    check_writable({"--output": files, "--report": req.report, "--frames-csv": req.frames_csv})
    for flag, path in (("--report", req.report), ("--frames-csv", req.frames_csv)):
        if path is not None and not is_special(path) and not Path(path).parent.is_dir():
            raise SegrtError(f"{flag} {shown(path)}: folder {shown(Path(path).parent)} does not exist; create it "
                             "first")
        if path is not None and Path(path).is_dir():
            raise SegrtError(f"{flag} {shown(path)} is a folder; give a file name")
    overrides = dict(req.overrides)
    if req.config_path is not None:
        cfg = load_config(req.config_path, RunConfig, overrides)
    else:
        cfg = from_dict(RunConfig, {k: v for k, v in overrides.items() if v is not None},
                        source="command-line options")
    if cfg.mode == "labels":
        check_label_outputs(files, req.show, req.serve)
    return cfg, per_stream


def _open_streams(stack: ExitStack, files: ExitStack, req: RunRequest, cfg: RunConfig, seg: Segmenter,
                  per_stream: list[list[str]]) -> tuple[list[Stream], list[tuple[int, str, object]], object]:
    """Each source opened with its sinks (files, a window, the browser view, else a null sink)
    into ``stack``, the output files' sinks into ``files``: (streams, (stream, output, sink) of
    the file outputs, the server or None)."""
    n, labels = len(req.sources), cfg.mode == "labels"
    server = None
    if req.serve:  # one server for every stream: a page per stream, or a grid of them
        server = stack.enter_context(open_sink("serve", req.serve, max_fps=cfg.serve_fps, streams=n,
                                               token=req.serve_token, names=[spec.name for spec in req.sources]))
        print(server.banner(), file=sys.stderr, flush=True)  # the one place the token is printed
    label_options = {"image_format": "png", "sidecar": {"classes.json": classes_json(seg)}} if labels else {}
    streams: list[Stream] = []
    file_sinks: list[tuple[int, str, object]] = []
    for i, (spec, outs) in enumerate(zip(req.sources, per_stream, strict=True)):
        source = stack.enter_context(open_source(
            spec, data_root=req.data_root, fps=cfg.image_fps, width=cfg.camera_width,
            height=cfg.camera_height, camera_fps=cfg.camera_fps))
        fps = source.fps or cfg.image_fps
        sinks = [files.enter_context(open_sink(sink_kind(o), o, fps=fps, **label_options)) for o in outs]
        file_sinks += [(i, o, sink) for o, sink in zip(outs, sinks, strict=True)]
        if req.show:  # one window per stream; the keys act on all of them
            sinks.append(stack.enter_context(open_sink("window", None if n == 1 else f"segrt: {i} {spec.name}")))
        if server is not None:
            sinks.append(server if n == 1 else server.channels[i])
        if not sinks:
            sinks.append(stack.enter_context(open_sink("null")))
        streams.append(Stream(i, spec.name, source, sinks, seg.renderer if i == 0 else seg.renderer.clone(),
                              labels=labels))
    return streams, file_sinks, server


def _linger(server, frames_out: int, interrupt: threading.Event) -> None:
    """Keeps a finished file's last frame and final numbers in the browser until Ctrl-C (a file
    that ends before a browser connects shows nothing)."""
    server.finished = True
    print(f"finished: {frames_out} frames; still serving the last frame and the numbers at {server.url} until "
          "Ctrl-C", file=sys.stderr, flush=True)
    while not interrupt.wait(0.2):
        pass


class RunSummary(str):
    """The end-of-run table; ``signum`` is the signal (SIGINT, SIGTERM) that ended the run
    early, None when it ran to its end: the CLI exits 128 + signum then, the way a shell
    reports a stopped command, though every output and the report are complete."""

    signum: int | None

    def __new__(cls, table: str, signum: int | None = None) -> "RunSummary":
        obj = super().__new__(cls, table)
        obj.signum = signum
        return obj


def check_label_outputs(files: Sequence[str], show: bool, serve: str | None) -> None:
    """--mode labels writes class indices, which only a lossless image folder keeps."""
    if show or serve:
        raise SegrtError("--mode labels writes files of class indices; to watch, use --mode overlay, mask or side "
                         "(or run twice)")
    if not files:
        raise SegrtError("--mode labels needs a folder to write the label maps to: -o labels/")
    for o in files:
        if sink_kind(o) != "images":
            raise SegrtError(f"--output {shown(o)}: --mode labels writes one lossless PNG per frame; a video's "
                             "compression would change the class indices. Give a folder: -o labels/")


def classes_json(seg: Segmenter) -> bytes:
    """What a label map's values mean: index → class name and its colour (RGB)."""
    m = seg.backend.manifest
    doc = {"model": m.name, "ignore": None,
           "classes": [{"index": i, "name": c, "color_rgb": list(p)}
                       for i, (c, p) in enumerate(zip(m.classes, m.palette, strict=True))]}
    return (json.dumps(doc, indent=2) + "\n").encode()


def default_output(sources: str | SourceSpec | Sequence[str | SourceSpec]) -> Path | None:
    """Where ``segrt run`` saves without -o, for sources that end (files, folders, CamVid; None
    for cameras and streams): ``{name}.mp4`` in the first free numbered folder (``runs/run``,
    ``runs/run2``, …; ``$SEGRT_RUNS_DIR`` instead of ``runs``), ``{stream}_{name}.mp4`` where
    names repeat; :func:`stream_outputs` fills it in for each source."""
    parsed = specs(sources)
    if not all(spec.ends for spec in parsed):
        return None
    names = [spec.name for spec in parsed]
    base = runs_dir()
    for i in range(1, 100000):
        folder = base / ("run" if i == 1 else f"run{i}")
        if not folder.exists():
            return folder / ("{name}.mp4" if len(set(names)) == len(names) else "{stream}_{name}.mp4")
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
        event.signum = signum  # type: ignore[attr-defined]  # the exit status says which
        event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield event
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)

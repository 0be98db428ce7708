"""The pipelined frame loop: capture ∥ inference ∥ render + write.

Threads overlap the work of several frames: the capture thread decodes and preprocesses
frame n+3 while the inference workers run the model on frames n+1 and n+2 (one with
``workers=1``) and the main thread colourises, composes and writes frame n (the main thread,
because GUI toolkits want windows there).
Queues between them are bounded, so memory is bounded and a slow stage slows the ones
before it; with a live source the capture side drops instead of waiting (see
:mod:`segrt.realtime.capture`).

Every frame carries its own stage timings and capture time, so the report has per-stage
statistics, frame age (capture → written) and, optionally, one CSV row per frame.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from segrt.errors import SegrtError, WriteFailed
from segrt.files import write_image
from segrt.preprocess import Preprocessor
from segrt.realtime.capture import CaptureStats, CaptureThread, Reconnect
from segrt.realtime.controls import Controls
from segrt.realtime.framelog import CSV_FIELDS, FrameLog
from segrt.realtime.steady import StreamFilter
from segrt.realtime.stream import InferenceStage, Inferred, Stream, put
from segrt.realtime.timing import StageTimer

HUD_WINDOW = 30  # frames averaged for the on-screen FPS: steady, yet follows changes in ~1 s


@dataclass
class LoopResult:
    frames_in: int            # frames that entered inference
    frames_out: int           # frames written to every sink
    timer: StageTimer
    stopped_by: str           # "end", "max_frames", "window", "interrupt", "error"
    dropped: int = 0          # live sources: frames overwritten before inference took them
    ages_ms: list[float] = field(default_factory=list)
    outages: list[dict] = field(default_factory=list)
    error: str | None = None
    exception: BaseException | None = None
    captured: int = 0         # frames read off the source (read-ahead and dropped ones included)
    write_error: str | None = None  # a sink could not write (full disk, …): the run stopped there
    streams: list[Stream] = field(default_factory=list)  # each stream's own counts (all of them, even one)
    batching: dict = field(default_factory=dict)
    model_busy_s: float = 0.0  # time inside the model, all batches (timer.parallel calls at once)


@dataclass(frozen=True)
class LoopOptions:
    """How :func:`run_loop` runs (what ``segrt run``'s settings decide)."""

    max_frames: int | None = None  # per stream
    progress: bool | None = None   # the progress bar: None = on a terminal only
    realtime: bool = False         # replay files at their frame rate (or realtime_fps), dropping like a camera
    realtime_fps: float = 0.0
    loop: bool = False             # start a file again at its end
    paced: bool = False            # a file in the browser view: its frame rate, every frame (see _Pacer)
    reconnect: Reconnect | None = None
    frames_csv: Path | None = None
    snapshot_dir: Path = Path(".")
    max_batch: int = 1             # several streams: frames of different streams per model call
    batch_wait_s: float = 0.004
    workers: int = 1               # model calls at once (a backend that allows it)
    steady: bool = False           # labels filtered in time (segrt.realtime.steady), one frame behind


def run_loop(streams: Sequence[Stream], backend, opts: LoopOptions = LoopOptions(),
             interrupt: threading.Event | None = None) -> LoopResult:
    """Runs until every source ends (``max_frames`` each), a viewer quits, Ctrl-C or SIGTERM.

    The streams' sources and sinks must already be entered. ``interrupt`` (set by a signal
    handler) ends the run between two frames, so every frame counted as written is whole in
    every sink. With several streams, frames are batched across them up to ``max_batch``; a
    stream whose sink fails stops alone and is reported. Any other exception (a signal that
    aborts, SIGHUP) propagates with the frame log discarded, so nothing is committed.
    """
    interrupt = interrupt or threading.Event()
    streams = list(streams)
    workers = opts.workers  # planned once, by plan_workers; the loop only holds the backend to it
    if workers > 1 and not getattr(backend, "concurrent", False):
        raise SegrtError(f"{workers} model calls at once: the {backend.name} backend runs one at a time "
                         "(plan the run with segrt.realtime.stream.plan_workers)")
    timer = StageTimer(parallel=workers)
    controls = streams[0].overlay.controls  # the window keys' state: every stream's overlay shares it
    ready = threading.Event()
    _start_captures(streams, backend, opts, timer, controls, ready, workers)
    inferred: queue.Queue[Inferred | None] = queue.Queue(maxsize=(1 + workers) * len(streams))
    stop = threading.Event()
    stage = InferenceStage(streams, backend, lambda item: put(inferred, item, stop), stop, ready, opts.max_frames,
                           opts.max_batch, opts.batch_wait_s, workers)
    run = _Run(streams, backend, opts, timer, controls)
    for s in streams:
        s.capture.start()
    stage.start()
    try:
        run.stopped_by = _consume(run, inferred, stage, interrupt)
    except KeyboardInterrupt:
        run.stopped_by = "interrupt"  # Ctrl-C or SIGTERM: what was written stays; sinks close normally
    except BaseException:  # an error, or a signal that aborts (SIGHUP): nothing is committed
        run.log.discard()
        raise
    finally:
        stop.set()
        for s in streams:
            s.capture.stop()
        stage.join(timeout=5)
        for t in (timer, *(s.timer for s in streams)):
            t.stop()
        run.bar.close()
        run.log.close()
    return _result(run, stage)


def _start_captures(streams: list[Stream], backend, opts: LoopOptions, timer: StageTimer, controls: Controls,
                    ready: threading.Event, workers: int) -> None:
    """A capture thread per stream (reading and preprocessing off the inference workers), and
    each stream's timer (its HUD and live numbers; the run's ``timer`` holds every frame), its
    --steady filter, and sinks wired to the controls and live numbers."""
    for s in streams:
        s.timer = StageTimer(parallel=workers, keep=4 * HUD_WINDOW)  # the HUD's and live view's window
        live = bool(s.source.live)
        pace = (opts.realtime_fps or s.source.fps or 25.0) if opts.realtime and not live else None
        s.capture = CaptureThread(s.source, live=live, pace_fps=pace, reconnect=opts.reconnect, loop=opts.loop,
                                  prepare=Preprocessor(backend.manifest.preprocess),
                                  ready=ready, name=f"segrt-capture-{s.index}")
        s.steady = StreamFilter(live, backend.manifest.classes) if opts.steady else None
        for sink in s.sinks:
            sink.attach(controls, lambda s=s: live_stats(s.timer, s.capture.stats, backend))


class _Run:
    """The consuming side of one run: counts, the progress bar, the frame log, the pacer."""

    def __init__(self, streams: list[Stream], backend, opts: LoopOptions, timer: StageTimer,
                 controls: Controls) -> None:
        self.streams, self.backend, self.opts, self.timer, self.controls = streams, backend, opts, timer, controls
        self.classes = backend.manifest.classes
        counts = [s.source.frame_count if opts.max_frames is None
                  else min(opts.max_frames, s.source.frame_count or opts.max_frames) for s in streams]
        endless = opts.loop or any(s.source.live for s in streams) or not all(counts)
        self.bar = tqdm(total=None if endless else sum(counts), unit="frame", desc=backend.manifest.name,
                        dynamic_ncols=True, mininterval=0.5,
                        disable=None if opts.progress is None else not opts.progress)
        self.log = FrameLog(opts.frames_csv, (*CSV_FIELDS, *(f"share_{c}" for c in self.classes), "stream"))
        self.pacer = _Pacer(streams if opts.paced and not opts.realtime else [])
        self.frames_out, self.stopped_by = 0, "end"
        self.write_error: str | None = None

    def written(self, item: Inferred, out: np.ndarray) -> None:
        """Bookkeeping for a frame every sink of its stream took: counts, age, class shares,
        the frame log's row, a snapshot if asked, the progress bar."""
        s, c, timer = item.stream, item.captured, self.timer
        age = (time.perf_counter() - c.t_capture) * 1000.0
        s.ages_ms.append(age)
        s.frames_out += 1
        self.frames_out += 1
        timer.end_frame()
        s.timer.end_frame()
        gap = max(0, c.index - s.prev_index - 1) if not self.opts.loop else 0  # frames skipped just before
        s.prev_index = c.index
        shares = class_shares(item.labels, len(self.classes))
        s.share_sum = shares if s.share_sum is None else s.share_sum + shares
        self.log.row((self.frames_out, c.index, round(c.t_capture - timer.started, 6),
                      *(round(1000 * timer.samples[k][-1], 3) for k in timer.stages), round(age, 3), gap,
                      s.capture.stats.dropped, *(round(float(v), 5) for v in shares), s.index))
        if self.controls.snapshot:
            self.controls.snapshot = False
            name = f"segrt_snapshot_{s.index}_{s.frames_out:06d}.png"
            write_image(self.opts.snapshot_dir / name, out, "snapshot")
        self.bar.update(1)
        if self.bar.n % 10 == 0:
            dropped = sum(t.capture.stats.dropped for t in self.streams)
            self.bar.set_postfix_str(live_line(timer, dropped), refresh=False)

    def viewer_stop(self) -> bool:
        """Waits out a pause (space in the window); True when a viewer asked to quit."""
        sinks = [sink for t in self.streams for sink in t.sinks]
        while self.controls.paused and not self.controls.quit:
            for sink in sinks:
                sink.poll()
            time.sleep(0.03)
        return self.controls.quit or any(sink.stop_requested for sink in sinks)


def _consume(run: _Run, inferred: queue.Queue, stage: InferenceStage, interrupt: threading.Event) -> str:
    """Writes the inferred frames as they come; returns why the run stopped."""
    streams = run.streams
    while True:
        if interrupt.is_set():  # what --steady holds is written too
            return _write_all(run, [i for s in streams if s.steady for i in s.steady.flush()], interrupt) or "interrupt"
        try:
            item = inferred.get(timeout=0.1)
        except queue.Empty:
            item = False  # none came: only what --steady should let go
        if item is None:
            if stage.error is not None:
                raise stage.error
            why = _write_all(run, [i for s in streams if s.steady for i in s.steady.flush()], interrupt)
            cap = run.opts.max_frames
            return why or ("max_frames" if cap is not None and all(s.frames_out >= cap for s in streams) else "end")
        why = None
        if item is not False:  # with --steady, frame n comes in and frame n-1 goes out, filtered
            why = _write_all(run, item.stream.steady.push(item) if item.stream.steady else [item], interrupt)
        if why is None and run.opts.steady:  # a stream that ended, or a live one gone quiet
            why = _write_all(run, [i for s in streams if s.steady.due(s.ended, s.taken) for i in s.steady.flush()],
                             interrupt)
        if why is not None:
            return why


def _write_all(run: _Run, items: Sequence[Inferred], interrupt: threading.Event) -> str | None:
    """Writes ``items`` in turn; returns why the run stops, if it does."""
    for item in items:
        why = _write(run, item, interrupt)
        if why is not None:
            return why
    return None


def _write(run: _Run, item: Inferred, interrupt: threading.Event) -> str | None:
    """Renders and writes one frame; returns why the run stops, if it does."""
    s = item.stream
    if s.write_error:
        return None  # this stream already failed; the others go on
    run.pacer.wait(s, interrupt)
    try:
        out = _render_and_write(s, item, run.timer, run.backend)
    except WriteFailed as exc:  # this stream stops; the run, once none is left
        s.write_error, s.stopped_by, s.ended = str(exc), "write_error", True
        s.capture.stop()
        if all(t.write_error for t in run.streams):
            run.write_error = s.write_error
            return "write_error"
        return None
    run.written(item, out)
    return "window" if run.viewer_stop() else None


def _result(run: _Run, stage: InferenceStage) -> LoopResult:
    streams = run.streams
    for s in streams:
        s.stopped_by = s.stopped_by or run.stopped_by
        # a frame taken by inference but not written (a stop in between) does not count as in
        if run.stopped_by in ("interrupt", "window"):
            s.taken = min(s.taken, s.frames_out)
    stats = [s.capture.stats for s in streams]
    failed = [st for st in stats if st.error]
    error = failed[0] if len(failed) == len(stats) else None  # the run's error: every source failed
    return LoopResult(
        sum(s.taken for s in streams), run.frames_out, run.timer, run.stopped_by, sum(st.dropped for st in stats),
        [a for s in streams for a in s.ages_ms], [o for st in stats for o in st.outages],
        error.error if error else None, error.exception if error else None,
        sum(st.captured for st in stats), run.write_error, streams, stage.stats.as_dict(run.opts.max_batch),
        stage.stats.busy_s)


class _Pacer:
    """Files shown in the browser view play at their own frame rate: stream ``s``'s frame n is
    written no earlier than n / fps after its first. Unlike ``--realtime`` nothing is dropped
    (a viewer must never cost a frame of the output): a model slower than the file plays it
    slower, the capture queue waiting as it does for any file."""

    def __init__(self, streams: Sequence[Stream]) -> None:
        self.fps = {s.index: s.source.fps or 25.0 for s in streams if not s.source.live}
        self.first: dict[int, float] = {}

    def wait(self, s: Stream, interrupt: threading.Event) -> None:
        fps = self.fps.get(s.index)
        if fps is not None:
            first = self.first.setdefault(s.index, time.perf_counter())
            interrupt.wait(max(0.0, first + s.frames_out / fps - time.perf_counter()))


def _render_and_write(s: Stream, item: Inferred, timer: StageTimer, backend) -> np.ndarray:
    """Colourise, compose (mode, legend, HUD) and write one frame of stream ``s``."""
    c, overlay = item.captured, s.overlay
    timers = (timer, s.timer)
    for t in timers:
        t.add("read", c.read_s)
        t.add("preprocess", c.prepare_s)
        t.add("infer", item.infer_s)
    t0 = time.perf_counter()
    size = (c.frame.shape[1], c.frame.shape[0])
    if s.labels:  # the class indices themselves, at the frame's size (what Segmenter returns)
        out = cv2.resize(item.labels, size, interpolation=cv2.INTER_NEAREST)
        t1 = t2 = time.perf_counter()
    else:
        color = overlay.colorize_to(item.labels, size)
        t1 = time.perf_counter()
        out = overlay.compose(c.frame, color, hud_lines(s.timer, backend, s.capture.stats) if overlay.hud else ())
        t2 = time.perf_counter()
    try:
        for sink in s.sinks:
            sink.write(out)
    finally:
        t3 = time.perf_counter()
        for t in timers:
            t.add("postprocess", t1 - t0 + item.steady_s)
            t.add("render", t2 - t1)
            t.add("write", t3 - t2)
    return out


def class_shares(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """float64 (n_classes,): the share of ``labels`` (uint8, any shape) each class covers."""
    counts = np.bincount(labels.ravel(), minlength=n_classes)[:n_classes]
    return counts / max(1, labels.size)


def hud_lines(timer: StageTimer, backend, stats: CaptureStats | None = None) -> list[str]:
    wall = timer.recent_fps(HUD_WINDOW)
    infer = timer.mean_ms("infer", HUD_WINDOW)
    m = backend.manifest
    first = f"{wall:5.1f} FPS  model {timer.model_fps(HUD_WINDOW):5.1f} FPS"
    if stats is not None and stats.dropped:
        first += f"  dropped {stats.dropped}"
    calls = f" x{timer.parallel}" if timer.parallel > 1 else ""  # model calls at once
    return [first, f"infer {infer:5.1f} ms{calls}  {m.architecture} {m.precision} {backend.name}"]


def live_line(timer: StageTimer, dropped: int = 0) -> str:
    parts = [f"{timer.recent_fps(HUD_WINDOW):.1f} FPS"]
    if dropped:
        parts.append(f"dropped {dropped}")
    parts += [f"{s} {timer.mean_ms(s, HUD_WINDOW):.1f}" for s in timer.stages]
    return " | ".join(parts) + " ms"


def live_stats(timer: StageTimer, stats: CaptureStats, backend) -> dict:
    """What the browser view polls: FPS, model FPS, counts, per-stage means."""
    return {"fps": round(timer.recent_fps(HUD_WINDOW), 2), "model_fps": round(timer.model_fps(HUD_WINDOW), 2),
            "frames_out": timer.frames, "captured": stats.captured, "dropped": stats.dropped,
            "stages_ms": {s: round(timer.mean_ms(s, HUD_WINDOW), 2) for s in timer.stages},
            "model": backend.manifest.name, "backend": backend.name}

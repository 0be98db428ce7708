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

import contextlib
import csv
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from segrt.errors import WriteFailed
from segrt.files import PendingOutput, write_error, write_image
from segrt.preprocess import Preprocessor
from segrt.realtime.capture import CaptureStats, CaptureThread, Reconnect
from segrt.realtime.controls import Controls
from segrt.realtime.stream import InferenceStage, Inferred, Stream, put
from segrt.realtime.timing import StageTimer

HUD_WINDOW = 30  # frames averaged for the on-screen FPS: steady, yet follows changes in ~1 s
CSV_FIELDS = ("frame", "source_index", "t_capture_s", "read_ms", "preprocess_ms", "infer_ms", "postprocess_ms",
              "render_ms", "write_ms", "age_ms", "dropped_before", "dropped_so_far")


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


class _FrameLog:
    """Per-frame CSV, written to a temporary name and renamed when the run ends (in place for a
    FIFO or /dev/stdout)."""

    def __init__(self, path: Path | None, fields: Sequence[str] = CSV_FIELDS) -> None:
        self.path = path
        self._file = None
        if path is not None:
            self._pending = PendingOutput(path, "frame log")
            try:
                self._file = open(self._pending.tmp, "w", newline="")
            except OSError as exc:
                self._pending.discard()
                raise write_error(path, "frame log", exc) from None
            self._writer = csv.writer(self._file)
            self._writer.writerow(fields)

    def row(self, values: Sequence) -> None:
        if self._file is not None:
            try:
                self._writer.writerow(values)
            except OSError as exc:
                self._file = None
                self._pending.discard()
                raise WriteFailed(f"--frames-csv {self._pending.path}: cannot write ({exc.strerror}); check free "
                                  "space") from None

    def discard(self) -> None:
        """Removes the unfinished log (the run failed or was aborted)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
            self._pending.discard()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                self._pending.discard()
                raise write_error(self._pending.path, "frame log", exc) from None
            finally:
                self._file = None
            self._pending.commit()


def run_loop(streams: Sequence[Stream], backend, max_frames: int | None = None, progress: bool | None = None,
             realtime: bool = False, loop: bool = False, reconnect: Reconnect | None = None,
             frames_csv: Path | None = None, snapshot_dir: Path = Path("."),
             interrupt: threading.Event | None = None, max_batch: int = 1, batch_wait_s: float = 0.004,
             controls: Controls | None = None, realtime_fps: float = 0.0, workers: int = 1,
             paced: bool = False) -> LoopResult:
    """Runs until every source ends (``max_frames`` each), a viewer quits, Ctrl-C or SIGTERM.

    The streams' sources and sinks must already be entered. ``realtime`` replays files at their
    native frame rate (or ``realtime_fps``) with the live drop policy; ``loop`` restarts a file at
    its end. ``paced`` (a file in the browser view) writes a file's frames no faster than its
    frame rate, every one of them (see :class:`_Pacer`).
    ``interrupt`` (set by a signal handler) ends the run between two frames, so every frame
    counted as written is whole in every sink. With several streams, frames are batched across
    them up to ``max_batch``; a stream whose sink fails stops alone and is reported.
    ``workers`` model calls run at once (a backend that allows it; see :class:`InferenceStage`).
    """
    interrupt = interrupt or threading.Event()
    streams = list(streams)
    single = len(streams) == 1
    workers = workers if getattr(backend, "concurrent", False) else 1
    timer = StageTimer(parallel=workers)
    controls = controls or streams[0].overlay.controls
    prep = Preprocessor(backend.manifest.preprocess)
    ready = threading.Event()
    for s in streams:
        s.timer = timer if single else StageTimer(parallel=workers)
        live = bool(s.source.live)
        pace = (realtime_fps or s.source.fps or 25.0) if realtime and not live else None
        # preprocessing runs on the capture thread, so the inference workers only run the model
        s.capture = CaptureThread(s.source, live=live, pace_fps=pace, reconnect=reconnect, loop=loop,
                                  prepare=prep if single else Preprocessor(backend.manifest.preprocess),
                                  ready=ready, name=f"segrt-capture-{s.index}")
        for sink in s.sinks:
            sink.attach(controls, lambda s=s: live_stats(s.timer, s.capture.stats, backend))
    inferred: queue.Queue[Inferred | None] = queue.Queue(maxsize=(1 + workers) * len(streams))
    stop = threading.Event()
    stage = InferenceStage(streams, backend, lambda item: put(inferred, item, stop), stop, ready, max_frames,
                           max_batch, batch_wait_s, workers)
    counts = [s.source.frame_count if max_frames is None else min(max_frames, s.source.frame_count or max_frames)
              for s in streams]
    endless = loop or any(s.source.live for s in streams) or not all(counts)
    total = None if endless else sum(counts)
    bar = tqdm(total=total, unit="frame", desc=backend.manifest.name, dynamic_ncols=True, mininterval=0.5,
               disable=None if progress is None else not progress)
    classes = backend.manifest.classes
    log = _FrameLog(frames_csv, (*CSV_FIELDS, *(f"share_{c}" for c in classes), *(() if single else ("stream",))))
    pacer = _Pacer(streams if paced and not realtime else [])
    frames_out, stopped_by = 0, "end"
    write_error: str | None = None
    for s in streams:
        s.capture.start()
    stage.start()
    try:
        while True:
            if interrupt.is_set():
                stopped_by = "interrupt"
                break
            try:
                item = inferred.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                if stage.error is not None:
                    raise stage.error
                stopped_by = "max_frames" if single and max_frames is not None and frames_out >= max_frames \
                    else "end"
                break
            s, c = item.stream, item.captured
            if s.write_error:
                continue  # this stream already failed; the others go on
            pacer.wait(s, interrupt)
            try:
                out = _render_and_write(s, item, timer, backend)
            except WriteFailed as exc:
                if single:
                    stopped_by, write_error = "write_error", str(exc)
                    break
                s.write_error, s.stopped_by, s.ended = str(exc), "write_error", True
                s.capture.stop()
                continue
            age = (time.perf_counter() - c.t_capture) * 1000.0
            s.ages_ms.append(age)
            s.frames_out += 1
            frames_out += 1
            timer.end_frame()
            if not single:
                s.timer.end_frame()
            samples = timer.samples
            gap = max(0, c.index - s.prev_index - 1) if not loop else 0  # frames skipped just before this one
            s.prev_index = c.index
            shares = class_shares(item.labels, len(classes))
            s.share_sum = shares if s.share_sum is None else s.share_sum + shares
            log.row((frames_out, c.index, round(c.t_capture - timer.started, 6),
                     *(round(1000 * samples[k][-1], 3) for k in timer.stages), round(age, 3), gap,
                     s.capture.stats.dropped, *(round(float(v), 5) for v in shares), *(() if single else (s.index,))))
            if controls.snapshot:
                controls.snapshot = False
                name = f"segrt_snapshot_{frames_out:06d}.png" if single else \
                    f"segrt_snapshot_{s.index}_{s.frames_out:06d}.png"
                write_image(snapshot_dir / name, out, "snapshot")
            bar.update(1)
            if bar.n % 10 == 0:
                bar.set_postfix_str(live_line(timer, s.capture.stats if single else None), refresh=False)
            while controls.paused and not controls.quit:
                for t in streams:
                    for sink in t.sinks:
                        sink.poll()
                time.sleep(0.03)
            if controls.quit or any(sink.stop_requested for t in streams for sink in t.sinks):
                stopped_by = "window"
                break
    except KeyboardInterrupt:
        stopped_by = "interrupt"  # Ctrl-C or SIGTERM: what was written stays; sinks close normally
    except BaseException:  # an error, or a signal that aborts (SIGHUP): nothing is committed
        log.discard()
        raise
    finally:
        stop.set()
        for s in streams:
            s.capture.stop()
        stage.join(timeout=5)
        timer.stop()
        for s in streams:
            if s.timer is not timer:
                s.timer.stop()
        bar.close()
        log.close()
    for s in streams:
        s.stopped_by = s.stopped_by or stopped_by
        # a frame taken by inference but not written (a stop in between) does not count as in
        if stopped_by in ("interrupt", "window"):
            s.taken = min(s.taken, s.frames_out)
    first = streams[0].capture.stats
    stats = [s.capture.stats for s in streams]
    return LoopResult(
        sum(s.taken for s in streams), frames_out, timer, stopped_by, sum(st.dropped for st in stats),
        [a for s in streams for a in s.ages_ms], [o for st in stats for o in st.outages],
        first.error if single else None, first.exception if single else None, sum(st.captured for st in stats),
        write_error, streams, stage.stats.as_dict(max_batch), stage.stats.busy_s)


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
    timers = (timer,) if s.timer is timer else (timer, s.timer)
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
            t.add("postprocess", t1 - t0)
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


def live_line(timer: StageTimer, stats: CaptureStats | None = None) -> str:
    parts = [f"{timer.recent_fps(HUD_WINDOW):.1f} FPS"]
    if stats is not None and stats.dropped:
        parts.append(f"dropped {stats.dropped}")
    parts += [f"{s} {timer.mean_ms(s, HUD_WINDOW):.1f}" for s in timer.stages]
    return " | ".join(parts) + " ms"


def live_stats(timer: StageTimer, stats: CaptureStats, backend) -> dict:
    """What the browser view polls: FPS, model FPS, counts, per-stage means."""
    return {"fps": round(timer.recent_fps(HUD_WINDOW), 2), "model_fps": round(timer.model_fps(HUD_WINDOW), 2),
            "frames_out": len(timer.frame_total), "captured": stats.captured, "dropped": stats.dropped,
            "stages_ms": {s: round(timer.mean_ms(s, HUD_WINDOW), 2) for s in timer.stages},
            "model": backend.manifest.name, "backend": backend.name}

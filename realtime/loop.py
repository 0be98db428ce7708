"""The pipelined frame loop: capture ∥ inference ∥ render + write.

Three threads overlap the work of three frames: the capture thread decodes and preprocesses
frame n+2 while the inference thread runs the model on frame n+1 and the main thread colourises,
composes and writes frame n (the main thread, because GUI toolkits want windows there).
Queues between them are bounded, so memory is bounded and a slow stage slows the ones
before it; with a live source the capture side drops instead of waiting (see
:mod:`segrt.realtime.capture`).

Every frame carries its own stage timings and capture time, so the report has per-stage
statistics, frame age (capture → written) and, optionally, one CSV row per frame.
"""

from __future__ import annotations

import csv
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from segrt.engines.manifest import check_labels
from segrt.errors import WriteFailed
from segrt.files import PendingOutput, write_error, write_image
from segrt.preprocess import Preprocessor
from segrt.realtime.capture import CaptureStats, CaptureThread, Reconnect
from segrt.realtime.overlay import Overlay
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


@dataclass
class _Inferred:
    captured: object
    labels: np.ndarray
    preprocess_s: float
    infer_s: float


class _FrameLog:
    """Per-frame CSV, written to a temporary name and renamed when the run ends (in place for a
    FIFO or /dev/stdout)."""

    def __init__(self, path: Path | None) -> None:
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
            self._writer.writerow(CSV_FIELDS)

    def row(self, values: Sequence) -> None:
        if self._file is not None:
            try:
                self._writer.writerow(values)
            except OSError as exc:
                self._file = None
                self._pending.discard()
                raise WriteFailed(f"--frames-csv {self._pending.path}: cannot write ({exc.strerror}); check free "
                                  "space") from None

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


def run_loop(source, backend, sinks: Sequence, overlay: Overlay, max_frames: int | None = None,
             progress: bool | None = None, realtime: bool = False, loop: bool = False,
             reconnect: Reconnect | None = None, frames_csv: Path | None = None,
             snapshot_dir: Path = Path("."), interrupt: threading.Event | None = None) -> LoopResult:
    """Runs until the source ends, ``max_frames`` are written, a viewer quits, Ctrl-C or SIGTERM.

    ``source``, ``backend`` and ``sinks`` must already be entered. ``realtime`` replays a file
    at its native frame rate with the live drop policy; ``loop`` restarts a file at its end.
    ``interrupt`` (set by a signal handler) ends the run between two frames, so every frame
    counted as written is whole in every sink.
    """
    interrupt = interrupt or threading.Event()
    timer = StageTimer()
    controls = overlay.controls
    for s in sinks:
        if hasattr(s, "attach"):
            s.attach(controls, lambda: live_stats(timer, capture.stats, backend))
    live = bool(source.live)
    pace = (source.fps or 25.0) if realtime and not live else None
    prep = Preprocessor(backend.manifest.preprocess)
    # preprocessing runs on the capture thread, so the inference thread only runs the model
    capture = CaptureThread(source, live=live, pace_fps=pace, reconnect=reconnect, loop=loop,
                            prepare=prep)
    inferred: queue.Queue[_Inferred | None] = queue.Queue(maxsize=2)
    stop = threading.Event()
    worker_error: list[BaseException] = []

    taken = [0]

    def infer_worker() -> None:
        try:
            while not stop.is_set() and (max_frames is None or taken[0] < max_frames):
                item = capture.get()
                if item is None:
                    break
                taken[0] += 1
                t0 = time.perf_counter()
                labels = backend.infer(item.tensor[None])[0].copy()  # the backend reuses its output buffer
                check_labels(labels, backend.manifest, getattr(backend, "path", backend.manifest.name))
                _put(inferred, _Inferred(item, labels, item.prepare_s, time.perf_counter() - t0), stop)
        except BaseException as exc:  # noqa: BLE001  re-raised on the main thread
            worker_error.append(exc)
        finally:
            _put(inferred, None, stop)

    total = None if live or loop else (source.frame_count if max_frames is None
                                       else min(max_frames, source.frame_count or max_frames))
    bar = tqdm(total=total, unit="frame", desc=backend.manifest.name, dynamic_ncols=True, mininterval=0.5,
               disable=None if progress is None else not progress)
    log = _FrameLog(frames_csv)
    frames_out, ages, stopped_by, prev_index = 0, [], "end", -1
    write_error: str | None = None
    worker = threading.Thread(target=infer_worker, name="segrt-infer", daemon=True)
    capture.start()
    worker.start()
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
                if worker_error:
                    raise worker_error[0]
                stopped_by = "max_frames" if max_frames is not None and frames_out >= max_frames else "end"
                break
            c = item.captured
            timer.add("read", c.read_s)
            timer.add("preprocess", item.preprocess_s)
            timer.add("infer", item.infer_s)
            with timer.stage("postprocess"):
                color = overlay.colorize_to(item.labels, (c.frame.shape[1], c.frame.shape[0]))
            with timer.stage("render"):
                out = overlay.compose(c.frame, color,
                                      hud_lines(timer, backend, capture.stats) if overlay.hud else ())
            with timer.stage("write"):
                try:
                    for sink in sinks:
                        sink.write(out)
                except WriteFailed as exc:
                    stopped_by, write_error = "write_error", str(exc)
                    break
            age = (time.perf_counter() - c.t_capture) * 1000.0
            ages.append(age)
            frames_out += 1
            timer.end_frame()
            s = timer.samples
            gap = max(0, c.index - prev_index - 1) if not loop else 0  # frames skipped just before this one
            prev_index = c.index
            log.row((frames_out, c.index, round(c.t_capture - timer.started, 6),
                     *(round(1000 * s[k][-1], 3) for k in timer.stages), round(age, 3), gap, capture.stats.dropped))
            if controls.snapshot:
                controls.snapshot = False
                write_image(snapshot_dir / f"segrt_snapshot_{frames_out:06d}.png", out, "snapshot")
            bar.update(1)
            if bar.n % 10 == 0:
                bar.set_postfix_str(live_line(timer, capture.stats), refresh=False)
            while controls.paused and not controls.quit:
                for sink in sinks:
                    if hasattr(sink, "poll"):
                        sink.poll()
                time.sleep(0.03)
            if controls.quit or any(s.stop_requested for s in sinks):
                stopped_by = "window"
                break
    except KeyboardInterrupt:
        stopped_by = "interrupt"  # Ctrl-C or SIGTERM: what was written stays; sinks close normally
    finally:
        stop.set()
        capture.stop()
        worker.join(timeout=5)
        timer.stop()
        bar.close()
        log.close()
    # a frame taken by inference but not written (a stop in between) does not count as in
    frames_in = min(taken[0], frames_out) if stopped_by in ("interrupt", "window") else taken[0]
    return LoopResult(frames_in, frames_out, timer, stopped_by, capture.stats.dropped, ages,
                      capture.stats.outages, capture.stats.error, capture.stats.exception, capture.stats.captured,
                      write_error)


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set():
                return


def hud_lines(timer: StageTimer, backend, stats: CaptureStats | None = None) -> list[str]:
    wall = timer.recent_fps(HUD_WINDOW)
    infer = timer.mean_ms("infer", HUD_WINDOW)
    m = backend.manifest
    first = f"{wall:5.1f} FPS  model {1000.0 / infer if infer else 0.0:5.1f} FPS"
    if stats is not None and stats.dropped:
        first += f"  dropped {stats.dropped}"
    return [first, f"infer {infer:5.1f} ms  {m.architecture} {m.precision} {backend.name}"]


def live_line(timer: StageTimer, stats: CaptureStats | None = None) -> str:
    parts = [f"{timer.recent_fps(HUD_WINDOW):.1f} FPS"]
    if stats is not None and stats.dropped:
        parts.append(f"dropped {stats.dropped}")
    parts += [f"{s} {timer.mean_ms(s, HUD_WINDOW):.1f}" for s in timer.stages]
    return " | ".join(parts) + " ms"


def live_stats(timer: StageTimer, stats: CaptureStats, backend) -> dict:
    """What the browser view polls: FPS, model FPS, counts, per-stage means."""
    infer = timer.mean_ms("infer", HUD_WINDOW)
    return {"fps": round(timer.recent_fps(HUD_WINDOW), 2), "model_fps": round(1000.0 / infer, 2) if infer else 0.0,
            "frames_out": len(timer.frame_total), "captured": stats.captured, "dropped": stats.dropped,
            "stages_ms": {s: round(timer.mean_ms(s, HUD_WINDOW), 2) for s in timer.stages},
            "model": backend.manifest.name, "backend": backend.name}

"""The capture thread: reads frames off the source so decoding overlaps inference.

Two policies:

- **every frame** (files, folders, CamVid): a bounded queue; the reader waits when it is
  full, so every frame is processed, in order, none dropped.
- **newest wins** (cameras, network streams, and files replayed with ``--realtime``): a
  one-frame mailbox the reader overwrites; a frame nobody took in time is counted as dropped.
  The pipeline never falls behind real time, so frame age stays bounded.

A live source that stops delivering is reopened with exponential back-off; each outage is
recorded (start, seconds, attempts) for the report.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Captured:
    index: int              # position in the source (dropped frames leave gaps)
    frame: np.ndarray
    t_capture: float        # perf_counter when the frame was read
    read_s: float           # time the read (decode) took
    tensor: np.ndarray | None = None  # the network input, when the thread was given ``prepare``
    prepare_s: float = 0.0            # time ``prepare`` took
    cut: bool = False       # the source started again before it (a --loop seam, a reopened stream)


@dataclass
class Reconnect:
    attempts: int = 10          # reopen attempts per outage before giving up; 0 = never reopen
    first_wait: float = 0.5     # seconds; doubles each attempt
    max_wait: float = 8.0
    timeout: float = 20.0       # seconds of reopening per outage; no attempt starts after it (0 = no limit)


@dataclass
class CaptureStats:
    captured: int = 0
    dropped: int = 0
    outages: list[dict] = field(default_factory=list)
    error: str | None = None
    exception: BaseException | None = None


class CaptureThread:
    """Runs ``source.read()`` on its own thread. ``poll()`` returns the next :class:`Captured`
    without waiting (None when none is ready yet, False at the end of the source or when
    stopped); ``ready`` is set whenever a frame lands."""

    def __init__(self, source, live: bool, pace_fps: float | None = None, queue_size: int = 4,
                 reconnect: Reconnect | None = None, loop: bool = False,
                 prepare: Callable[[np.ndarray], np.ndarray] | None = None,
                 ready: threading.Event | None = None, name: str = "segrt-capture") -> None:
        self.source = source
        # frame → network input, run here, off the inference workers. With a live source that
        # outruns the model, frames later dropped are prepared too: a known, small cost (~1.5 ms
        # a frame at 960x540) paid on the capture thread, not on inference.
        self.prepare = prepare
        self.live = live
        self.pace_fps = pace_fps            # --realtime: replay a file at its native rate
        self.loop = loop                    # start a file again at its end
        self.reconnect = reconnect or Reconnect()
        self.stats = CaptureStats()
        self._queue: queue.Queue[Captured | None] = queue.Queue(maxsize=queue_size)
        self._slot: Captured | None = None
        self._done = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        # set whenever a frame is ready or the source ended: one event shared by every stream
        # of a run wakes the inference stage that gathers their frames into batches
        self.ready = ready or threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "CaptureThread":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        while True:  # unblock a reader waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)

    # -- reader side --------------------------------------------------------------------------

    def _read(self) -> np.ndarray | None:
        frame = self.source.read()
        if frame is None and self.loop and not self.live and hasattr(self.source, "rewind"):
            self.source.rewind()
            self._cut = True
            frame = self.source.read()
        return frame

    def _reopen(self) -> bool:
        """Reopens a live source after it stopped; True once it delivers again."""
        r = self.reconnect
        if not self.live or r.attempts <= 0 or not hasattr(self.source, "reopen"):
            return False
        outage = {"start_s": round(time.perf_counter() - self._t0, 3), "attempts": 0, "recovered": False}
        self.stats.outages.append(outage)
        wait, t_lost = r.first_wait, time.perf_counter()
        for attempt in range(1, r.attempts + 1):
            if r.timeout and time.perf_counter() - t_lost + wait > r.timeout:
                break  # the outage's time is up: the next attempt would start after it
            if self._stop.wait(wait):
                break
            outage["attempts"] = attempt
            if self.source.reopen():
                outage["recovered"] = self._cut = True
                break
            wait = min(wait * 2, r.max_wait)
        outage["seconds"] = round(time.perf_counter() - t_lost, 3)
        return bool(outage["recovered"])

    def _run(self) -> None:
        self._t0 = time.perf_counter()
        self._cut = False
        index = 0
        try:
            while not self._stop.is_set():
                if self.pace_fps:  # a file replayed in real time: frame i is due at i / fps
                    delay = self._t0 + index / self.pace_fps - time.perf_counter()
                    if delay > 0 and self._stop.wait(delay):
                        break
                t0 = time.perf_counter()
                frame = self._read()
                t1 = time.perf_counter()
                if frame is None:
                    if self._reopen():
                        continue
                    break
                item = Captured(index, frame.copy(), t1, t1 - t0, cut=self._cut)  # sources may reuse their buffer
                self._cut = False
                if self.prepare is not None:
                    item.tensor = self.prepare(item.frame)
                    item.prepare_s = time.perf_counter() - t1
                index += 1
                self.stats.captured += 1
                if self.live or self.pace_fps:
                    with self._cond:
                        if self._slot is not None:
                            self.stats.dropped += 1
                        self._slot = item
                        self._cond.notify()
                else:
                    while not self._stop.is_set():
                        try:
                            self._queue.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                self.ready.set()
        except Exception as exc:  # the consumer reports it; a dead thread must not hang the loop  # noqa: BLE001
            self.stats.error = f"{type(exc).__name__}: {exc}"
            self.stats.exception = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()
            if not (self.live or self.pace_fps):
                try:
                    self._queue.put(None, timeout=1)
                except queue.Full:
                    pass
            self.ready.set()

    # -- consumer side ------------------------------------------------------------------------

    def poll(self) -> Captured | None | bool:
        """Without waiting: the next frame, None when none is ready yet, or False once the
        source has ended (or the thread was stopped) and every frame was taken."""
        if self.live or self.pace_fps:
            with self._cond:
                item, self._slot = self._slot, None
                return item if item is not None else (False if self._done or self._stop.is_set() else None)
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            return False if self._stop.is_set() or (self._done and self._queue.empty()) else None
        return False if item is None else item

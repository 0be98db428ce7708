"""The parts of a run: a stream per source, and the one inference stage they share.

A :class:`Stream` is one source with its capture thread (decode + preprocess, the drop policy
of a live source), its overlay and its sinks, and its own counts. The
:class:`InferenceStage` gathers the frames that are ready across every stream, up to the
model's batch limit and waiting at most ``wait_s`` for more once it has one, runs the backend
once on the batch and hands each label map back, tagged with its stream, to the render stage
(the main thread of :func:`segrt.realtime.loop.run_loop`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segrt.engines.manifest import check_labels
from segrt.realtime.capture import Captured, CaptureThread
from segrt.realtime.overlay import Overlay
from segrt.realtime.timing import StageTimer


@dataclass
class Stream:
    index: int
    name: str                   # what reports and the progress bar call it (the source's stem)
    source: Any                 # an entered source
    sinks: list                 # entered sinks: files, window, browser view, or a null sink
    overlay: Overlay            # per stream (its buffers fit its frame size); the controls are shared
    capture: CaptureThread | None = None
    timer: StageTimer | None = None
    taken: int = 0              # frames that entered inference
    frames_out: int = 0         # frames written to every sink of this stream
    ages_ms: list[float] = field(default_factory=list)
    prev_index: int = -1
    ended: bool = False         # no more frames will be taken: end of source, max_frames, a failure
    stopped_by: str | None = None
    write_error: str | None = None

    def fps(self) -> float:
        wall = self.timer.wall_seconds if self.timer else 0.0
        return self.frames_out / wall if wall > 0 else 0.0


@dataclass
class Inferred:
    stream: Stream
    captured: Captured
    labels: np.ndarray
    infer_s: float              # the model call that produced it (shared by a batch)
    batch: int


@dataclass
class BatchStats:
    batches: int = 0
    frames: int = 0
    busy_s: float = 0.0         # time inside the model: frames / busy_s is the model's rate
    largest: int = 0

    def as_dict(self, limit: int) -> dict:
        return {"max_batch": limit, "batches": self.batches, "largest": self.largest,
                "mean": round(self.frames / self.batches, 3) if self.batches else 0.0}


class InferenceStage:
    """One thread running the model for every stream. With one stream it takes frames one by
    one exactly as the single-source loop always did; with several it batches across them
    (at most one frame per stream per batch, so each stream's frames stay in order)."""

    def __init__(self, streams: Sequence[Stream], backend, emit: Callable[[Inferred | None], None],
                 stop: threading.Event, ready: threading.Event, max_frames: int | None = None,
                 max_batch: int = 1, wait_s: float = 0.004) -> None:
        self.streams, self.backend, self.emit, self.stop = list(streams), backend, emit, stop
        self.ready, self.max_frames = ready, max_frames
        self.max_batch, self.wait_s = max(1, max_batch), wait_s
        self.stats = BatchStats()
        self.error: BaseException | None = None
        self._turn = 0
        self.thread = threading.Thread(target=self._run, name="segrt-infer", daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                batch = self._gather()
                if not batch:
                    break
                self._infer(batch)
        except BaseException as exc:  # noqa: BLE001  re-raised on the main thread
            self.error = exc
        finally:
            self.emit(None)

    def _take(self, s: Stream, item: Captured | None) -> Captured | None:
        """Counts a frame taken from ``s``; the stream ends at its ``max_frames``-th."""
        if item is not None:
            s.taken += 1
            if self.max_frames is not None and s.taken >= self.max_frames:
                s.ended, s.stopped_by = True, "max_frames"
        return item

    def _gather(self) -> list[tuple[Stream, Captured]]:
        if len(self.streams) == 1:  # blocking: the one-stream path, unchanged
            s = self.streams[0]
            if s.ended or (self.max_frames is not None and s.taken >= self.max_frames):
                return []
            assert s.capture is not None
            item = self._take(s, s.capture.get())
            s.ended = s.ended or item is None
            return [(s, item)] if item is not None else []
        batch: list[tuple[Stream, Captured]] = []
        deadline = None
        order = self.streams[self._turn:] + self.streams[:self._turn]  # round robin: no stream starves
        self._turn = (self._turn + 1) % len(self.streams)
        while not self.stop.is_set():
            self.ready.clear()  # before polling: a frame that lands after the poll sets it again
            for s in order:
                if len(batch) >= self.max_batch:
                    break
                if s.ended or any(t is s for t, _ in batch):
                    continue
                assert s.capture is not None
                polled = s.capture.poll()
                if polled is False:  # the source ended
                    s.ended = True
                elif self._take(s, polled) is not None:
                    batch.append((s, polled))
            waiting = [s for s in order if not s.ended and not any(t is s for t, _ in batch)]
            if len(batch) >= self.max_batch or not waiting:
                break
            now = time.perf_counter()
            if batch:
                deadline = deadline or now + self.wait_s
                if now >= deadline:
                    break
                self.ready.wait(deadline - now)
            else:
                self.ready.wait(0.1)
        return batch

    def _infer(self, batch: list[tuple[Stream, Captured]]) -> None:
        b = self.backend
        t0 = time.perf_counter()
        if len(batch) == 1:
            labels = b.infer(batch[0][1].tensor[None])
        else:
            x = b.input_buffer(len(batch))
            for i, (_, item) in enumerate(batch):
                x[i] = item.tensor
            labels = b.infer(x)
        dt = time.perf_counter() - t0
        st = self.stats
        st.batches, st.frames, st.busy_s = st.batches + 1, st.frames + len(batch), st.busy_s + dt
        st.largest = max(st.largest, len(batch))
        for i, (s, item) in enumerate(batch):
            out = labels[i].copy()  # the backend reuses its output buffer
            check_labels(out, b.manifest, getattr(b, "path", b.manifest.name))
            self.emit(Inferred(s, item, out, dt, len(batch)))


def model_batch_limit(backend, requested: int) -> tuple[int, str]:
    """The largest batch to run: ``requested``, or less where the model's input fixes its batch
    (a fixed batch of 1 runs the streams one by one), and why."""
    fixed = backend.fixed_batch
    if fixed is not None and fixed < requested:
        return fixed, (f"the model's batch is fixed at {fixed}: streams run one by one; export it with "
                       "--dynamic to batch them")
    most = backend.max_batch  # a served model's max_batch_size
    if most and most < requested:
        return most, f"up to {most} frames per model call (the served model's max_batch_size)"
    return requested, f"up to {requested} frames per model call"


def put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set():
                return

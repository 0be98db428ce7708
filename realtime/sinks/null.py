"""Discards frames: for benchmarking the loop without display or encoding costs."""

from __future__ import annotations

import numpy as np

from segrt.realtime.sinks import SinkBase


class NullSink(SinkBase):

    def __init__(self, target: str | None = None, **_: object) -> None:
        self.frames_written = 0

    def __enter__(self) -> "NullSink":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def write(self, frame: np.ndarray) -> None:
        self.frames_written += 1

"""Frame sinks: a video file, a folder of images, a window, the browser view, or nothing.

``--output out.mp4`` (or .avi) writes a video, ``--output frames/`` a folder of JPEGs (PNG
label maps with ``--mode labels``), ``--show`` opens a window, ``--serve`` streams to a
browser (MJPEG over HTTP), and with none of them the frames go nowhere (benchmarking).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from segrt.registry import Registry


class Sink(Protocol):
    frames_written: int
    stop_requested: bool  # a window's 'q' / Esc asks the loop to end

    def attach(self, controls, stats) -> None: ...
    def poll(self) -> None: ...

    def __enter__(self) -> "Sink": ...
    def __exit__(self, *exc: object) -> None: ...
    def write(self, frame: np.ndarray) -> None:
        """Takes a uint8 (H, W, 3) BGR frame; must not keep a reference to it."""


class SinkBase:
    """What every sink shares: no stop request, and the viewer hooks as no-ops (a window and the
    browser view override them)."""

    stop_requested = False

    def attach(self, controls, stats) -> None:
        """Gets the run's viewer controls and a function returning live stats."""

    def poll(self) -> None:
        """Handles viewer input while the run is paused."""


SINKS = Registry.table("sink kind", "segrt.realtime.sinks", {
    "video": "video:VideoSink", "images": "images:ImageFolderSink", "window": "window:WindowSink",
    "null": "null:NullSink", "serve": "mjpeg:MjpegSink"})



def sink_kind(output: str) -> str:
    """'out.mp4' → video; 'frames/' or a suffix-less path → images; 'null' → null."""
    if output in ("null", "window"):
        return output
    suffix = Path(output).suffix.lower()
    if output.endswith(("/", "\\")) or not suffix or Path(output).is_dir():
        return "images"
    return "video"


def open_sink(kind: str, target: str | None = None, **options) -> Sink:
    cls = SINKS.load(kind)
    return cls(target, **options)

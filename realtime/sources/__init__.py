"""Frame sources, opened from one URI string: one API for files, folders, datasets and cameras.

==========================  =============================================
``clip.mp4``, ``rtsp://…``  a video file or stream (anything OpenCV opens)
``frames/``                 a folder of images, in name order
``camvid:val``              a CamVid split; ``camvid:val/0016E5`` one sequence
``0``, ``webcam:0``         a camera by index (``/dev/video0`` too)
``rtsp://…``, ``http://…``  a network stream (RTSP, MJPEG over HTTP, …)
``… ! appsink``             a GStreamer pipeline (OpenCV with GStreamer)
==========================  =============================================
"""

from __future__ import annotations

import os
import re
import stat
from typing import Protocol

import numpy as np

from segrt.errors import DataError
from segrt.files import shown
from segrt.registry import Registry


class Source(Protocol):
    name: str
    fps: float | None          # nominal frame rate, None when unknown
    frame_count: int | None    # None for live or unknown-length sources
    live: bool

    def __enter__(self) -> "Source": ...
    def __exit__(self, *exc: object) -> None: ...
    def read(self) -> np.ndarray | None:
        """The next uint8 (H, W, 3) BGR frame, or None at the end. May reuse its buffer."""


SOURCES: Registry[str] = Registry("source kind")
SOURCES.register("file")("segrt.realtime.sources.video:VideoSource")
SOURCES.register("folder")("segrt.realtime.sources.folder:FolderSource")
SOURCES.register("camvid")("segrt.realtime.sources.camvid:CamVidSource")
SOURCES.register("webcam")("segrt.realtime.sources.webcam:WebcamSource")

USAGE = ("a source is a video file or stream URL, an image folder, camvid:SPLIT[/SEQUENCE] "
         "or a webcam index such as 0")


def parse_source(uri: str) -> tuple[str, str]:
    """URI → (kind, argument); explicit ``kind:arg`` or inferred from what the path is. An
    existing file or folder is always a file or folder source, whatever characters its name
    has (``wow!.mp4``, ``dashcam:2024.mp4``); URLs, pipelines and cameras only otherwise."""
    if not uri:
        raise DataError(f"SOURCE: empty; {USAGE}")
    try:
        mode = os.stat(uri).st_mode
    except (OSError, ValueError):  # missing, a name too long or with a NUL: not a path
        mode = 0
    if stat.S_ISDIR(mode):
        return "folder", uri
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return "file", uri
    if "://" in uri or "!" in uri:  # a stream URL or a GStreamer pipeline
        return "file", uri
    m = re.fullmatch(r"([a-z]+):(.*)", uri)
    if m and len(m.group(1)) > 1:  # "C:\..." is a Windows drive, not a kind
        SOURCES.get(m.group(1))  # unknown kind → error listing the valid ones
        return m.group(1), m.group(2)
    if uri.isdigit() or re.fullmatch(r"/dev/video\d+", uri):
        return "webcam", uri
    raise DataError(f"source '{shown(uri)}': no such file or folder; {USAGE}")


def open_source(uri: str, **options) -> Source:
    """A constructed (not yet entered) source for ``uri``; ``options`` go to its class."""
    kind, arg = parse_source(uri)
    cls = SOURCES.load(kind)
    return cls(arg, **options)

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
from dataclasses import dataclass
from pathlib import Path
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


SOURCES = Registry.table("source kind", "segrt.realtime.sources", {
    "file": "video:VideoSource", "folder": "folder:FolderSource", "camvid": "camvid:CamVidSource",
    "webcam": "webcam:WebcamSource"})

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


@dataclass(frozen=True)
class SourceSpec:
    """A source URI parsed once (:func:`source_spec`) and carried: its kind and argument, and
    what naming and output planning ask of it."""

    uri: str
    kind: str
    arg: str

    @property
    def network(self) -> bool:
        """A stream URL or a GStreamer pipeline (a ``file`` kind that never ends on its own)."""
        from segrt.realtime.sources.video import is_gstreamer, is_network

        return self.kind == "file" and (is_network(self.arg) or is_gstreamer(self.arg))

    @property
    def ends(self) -> bool:
        """A file, folder or dataset: it ends, so a run of it saves an output by default."""
        return self.kind in ("file", "folder", "camvid") and not self.network

    @property
    def name(self) -> str:
        """The short name for output templates ({name}), windows and reports: a file's or
        folder's stem, camvid_val_0016E5, or the camera or URL made file-name safe."""
        if self.kind == "camvid":
            return "camvid_" + self.arg.replace("/", "_")
        if self.kind in ("file", "folder") and not self.network:
            return Path(self.arg.rstrip("/")).stem or "overlay"
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(self.arg)).strip("_.")[:48] or "stream"


def source_spec(uri: str | SourceSpec) -> SourceSpec:
    """``uri`` parsed (a one-line error for one that names nothing); a spec passes through."""
    return uri if isinstance(uri, SourceSpec) else SourceSpec(uri, *parse_source(uri))


def open_source(uri: str | SourceSpec, **options) -> Source:
    """A constructed (not yet entered) source for ``uri`` (or its parsed spec); ``options`` go
    to its class."""
    spec = source_spec(uri)
    cls = SOURCES.load(spec.kind)
    return cls(spec.arg, **options)

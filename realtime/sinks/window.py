"""An OpenCV window. Keys: q/Esc quit, space pause, m overlay → mask → side by side, +/- alpha,
s snapshot. Needs a display and a GUI build of OpenCV."""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from segrt.errors import SegrtError
from segrt.realtime.sinks import SinkBase

TITLE = "segrt"  # one source; with several, each window is "segrt: INDEX NAME"


def window_support() -> tuple[bool, str]:
    """(usable, reason) for showing a window on this machine."""
    gui = [line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
           if line.strip().startswith("GUI:")]
    if not gui or gui[0].upper() == "NONE":
        return False, ("this OpenCV has no GUI (opencv-python-headless): watch in a browser with --serve :8080 "
                       "instead, or for a window run 'pip uninstall -y opencv-python-headless && pip install "
                       "opencv-python'")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, ("no display (DISPLAY is not set): watch in a browser with --serve :8080, or write "
                       "--output FILE.mp4, instead of --show")
    return True, f"OpenCV GUI: {gui[0]}"


class WindowSink(SinkBase):
    def __init__(self, target: str | None = None, **_: object) -> None:
        ok, why = window_support()
        if not ok:
            raise SegrtError(f"--show: {why}")
        self.title = target or TITLE
        self.frames_written = 0
        self.stop_requested = False
        self.controls = None

    def attach(self, controls, stats) -> None:
        self.controls = controls

    def poll(self) -> None:
        """Handles keys while the loop is paused."""
        self._key(cv2.waitKey(30))

    def _key(self, code: int) -> None:
        if code < 0:
            return
        if self.controls is not None:
            self.controls.key(code)
        elif code & 0xFF in (ord("q"), 27):
            self.stop_requested = True

    def __enter__(self) -> "WindowSink":
        # resizable, aspect kept, no Qt toolbar eating into the picture
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        return self

    def __exit__(self, *exc: object) -> None:
        cv2.destroyWindow(self.title)

    def write(self, frame: np.ndarray) -> None:
        if self.frames_written == 0:  # Qt opens resizable windows at ~400x300: start at frame size
            cv2.resizeWindow(self.title, frame.shape[1], frame.shape[0])
        cv2.imshow(self.title, frame)
        self.frames_written += 1
        self._key(cv2.waitKey(1))

"""Cameras by index (``0``, ``webcam:1``) or device path (``/dev/video0``)."""

from __future__ import annotations

import cv2

from segrt.realtime.sources.video import VideoSource


class WebcamSource(VideoSource):
    """``width``/``height``/``camera_fps`` ask the camera for a mode (0 = its default); the
    camera may pick the nearest it has, and the report shows what it delivered."""

    def __init__(self, uri: str, width: int = 0, height: int = 0, camera_fps: float = 0, **options: object) -> None:
        super().__init__(uri, **options)
        self.live = True
        self.name = f"webcam:{uri}"
        self.request = (width, height, camera_fps)

    def _open_capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(int(self.uri) if self.uri.isdigit() else self.uri)
        w, h, fps = self.request
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, w), (cv2.CAP_PROP_FRAME_HEIGHT, h), (cv2.CAP_PROP_FPS, fps)):
            if value and cap.isOpened():
                cap.set(prop, value)
        return cap

    def _what(self) -> str:
        return ("camera; no camera at that index or device (list them with 'v4l2-ctl --list-devices'), "
                "or it is in use by another program")

"""Cameras by index (``0``, ``webcam:1``) or device path (``/dev/video0``)."""

from __future__ import annotations

import cv2

from segrt.realtime.sources.video import VideoSource


class WebcamSource(VideoSource):
    live = True

    def __init__(self, uri: str, **options: object) -> None:
        super().__init__(uri, **options)
        self.name = f"webcam:{uri}"

    def _open_capture(self) -> cv2.VideoCapture:
        return cv2.VideoCapture(int(self.uri) if self.uri.isdigit() else self.uri)

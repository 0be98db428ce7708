"""Video files, written atomically and checked.

``.mp4`` is H.264 (libx264 through PyAV, whose wheels bundle FFmpeg), which browsers, GitHub
and editors play; where PyAV or its H.264 encoder is missing, or the frame has odd sides,
OpenCV's MPEG-4 Part 2 (``mp4v``) is the fallback, and the report says which codec was used.
``.avi`` is Motion-JPEG through OpenCV.

Frames go to a hidden temporary beside ``NAME.mp4`` (see :mod:`segrt.files`), renamed to
``NAME.mp4`` when the writer closes and the file reads back with every frame written, so an
earlier video of the same name is never replaced by a truncated one. PyAV raises on a failed
write; OpenCV's writer reports nothing, so the sink also watches the file grow while it
writes (a full disk stops a run within a few frames, exit 2) and reads the finished file back
before it takes the final name.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from segrt.envinfo import h264_available
from segrt.errors import DataError, WriteFailed
from segrt.files import PendingOutput, shown
from segrt.realtime.sinks import SinkBase

FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}  # codecs every OpenCV wheel can write
H264_OPTIONS = {"preset": "ultrafast", "crf": "23"}  # 4-7 ms a 960x540 frame on one core here


class _OpenCVWriter:
    def __init__(self, path: str, suffix: str, fps: float, size: tuple[int, int]) -> None:
        self.codec = {".mp4": "mpeg4 part 2 (mp4v, OpenCV)", ".avi": "mjpeg (OpenCV)"}[suffix]
        self._w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*FOURCC[suffix]), fps, size)
        if not self._w.isOpened():
            raise OSError("OpenCV cannot open a writer for it")

    def write(self, frame: np.ndarray) -> None:
        self._w.write(frame)

    def close(self) -> None:
        self._w.release()


class _H264Writer:
    codec = "h264 (libx264, PyAV)"

    def __init__(self, path: str, fps: float, size: tuple[int, int]) -> None:
        from fractions import Fraction

        import av

        self._av = av
        open(path, "wb").close()  # PyAV opens the file only at the first frame: fail here instead
        self._container = av.open(path, "w", format="mp4")
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height = size
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = dict(H264_OPTIONS, movflags="+faststart")
        self._stream.codec_context.thread_count = 1  # the other core runs the model
        self._yuv: np.ndarray | None = None

    def write(self, frame: np.ndarray) -> None:
        # OpenCV's BGR -> I420 (BT.601, video range, as libswscale's default): a 960x540 frame
        # encodes in 3.3-3.5 ms here, one thread, against 4.1 ms when PyAV converts bgr24 itself,
        # and decodes back closer to the source (1.8 against 2.3 grey levels mean error)
        yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420, dst=self._yuv)
        self._yuv = yuv
        for packet in self._stream.encode(self._av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()
CHECK_EVERY = 16  # frames between checks that the file still grows
STALLED = 4  # growth checks without growth that mean the OpenCV writer's writes fail
MIN_FREE = 64 << 10  # bytes; less free space than this stops the run as a write failure


class VideoSink(SinkBase):

    def __init__(self, target: str | None, fps: float = 25.0, **_: object) -> None:
        path = Path(str(target))
        if path.suffix.lower() not in FOURCC:
            raise DataError(f"--output {shown(path)}: video suffix must be one of {', '.join(FOURCC)} "
                            "(or end with / for a folder of images)")
        if path.parent.exists() and not path.parent.is_dir():
            raise DataError(f"--output {shown(path)}: {shown(path.parent)} is not a folder")
        if path.is_dir():
            raise DataError(f"--output {shown(path)} is a folder; end it with / for a folder of images")
        self.path = path
        self.fps = fps
        self.frames_written = 0
        self.frames_whole: int | None = None  # after close: frames the file reads back with
        self._writer: _OpenCVWriter | _H264Writer | None = None
        self.codec: str | None = None
        self._pending: PendingOutput | None = None
        self._last_size = -1
        self._stalled = 0
        self.error: str | None = None  # set when the file could not be written whole

    def __enter__(self) -> "VideoSink":
        return self

    def _open(self, width: int, height: int) -> None:
        self._pending = PendingOutput(self.path, "video", parents=True)  # -o new/x.mp4 makes new/
        if self._pending.special:
            raise DataError(f"--output {shown(self.path)}: a video needs a regular file (MP4 and AVI are not "
                            "streamable); write to a file")
        # an absolute path: FFmpeg would read "out:1.mp4" as the protocol "out"
        target, suffix = os.path.abspath(self._pending.tmp), self.path.suffix.lower()
        try:
            if suffix == ".mp4" and width % 2 == 0 and height % 2 == 0 and h264_available():
                self._writer = _H264Writer(target, self.fps, (width, height))
            else:
                self._writer = _OpenCVWriter(target, suffix, self.fps, (width, height))
        except Exception as exc:  # noqa: BLE001  PyAV's and OpenCV's errors alike
            self._pending.discard()
            raise WriteFailed(f"--output {shown(self.path)}: cannot write this video ({exc}); check the "
                              "folder is writable and the disk is not full") from None
        self.codec = self._writer.codec

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            self._open(frame.shape[1], frame.shape[0])
            self._size = (frame.shape[1], frame.shape[0])
        if (frame.shape[1], frame.shape[0]) != self._size:  # the viewer switched mode mid-run
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        try:
            self._writer.write(frame)
        except Exception as exc:  # noqa: BLE001  PyAV raises on a failed write (full disk, …)
            self.error = f"write failed ({exc})"
            raise WriteFailed(f"--output {shown(self.path)}: cannot write the video ({exc}); check free disk space "
                              "and that the folder is writable") from None
        self.frames_written += 1
        if self.frames_written % CHECK_EVERY == 0:
            self._check_growing()

    def _check_growing(self) -> None:
        assert self._pending is not None
        try:
            size = self._pending.tmp.stat().st_size
            st = os.statvfs(self._pending.tmp.parent)
            free = st.f_bavail * st.f_frsize
        except OSError as exc:
            self.error = f"vanished ({exc.strerror})"
            raise WriteFailed(f"--output {shown(self.path)}: the video being written {self.error}") from None
        # OpenCV's writer reports no failed write: a file that stopped growing for STALLED checks
        # (64 frames, far more than FFmpeg's 32 KiB buffer holds) is one. PyAV raises instead.
        self._stalled = self._stalled + 1 if size <= self._last_size else 0
        if free < MIN_FREE or (self._stalled >= STALLED and isinstance(self._writer, _OpenCVWriter)):
            self.error = "disk full"
            raise WriteFailed(f"--output {shown(self.path)}: cannot write the video: the disk is full "
                              f"({free // 1024} KiB free); free space or write elsewhere")
        self._last_size = size

    def __exit__(self, *exc: object) -> None:
        if self._writer is None:
            return
        if exc[0] is not None and self.error is None:  # an error or a signal ended the run mid-way
            self.error = f"the run ended by {getattr(exc[0], '__name__', 'an exception')}"
        try:
            self._writer.close()
        except Exception as exc:  # noqa: BLE001  the last packets or the index could not be written
            self.error = self.error or f"closing failed ({exc})"
        self._writer = None
        assert self._pending is not None
        self.frames_whole = readable_frames(self._pending.tmp) if self.error is None else 0
        if self.error is None and self.frames_whole < self.frames_written:
            self.error = (f"the finished file reads back with {self.frames_whole} of its {self.frames_written} "
                          "frames (disk full or failing)")
        if self.error is not None or not self.frames_written:
            self.frames_whole = 0
            self._pending.discard()  # never an incomplete video under the final name
            return
        self._pending.commit()


def readable_frames(path: Path) -> int:
    """Frames a finished video file declares and OpenCV can open (0 when it does not open)."""
    cap = cv2.VideoCapture(os.path.abspath(path))
    try:
        if not cap.isOpened():
            return 0
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()

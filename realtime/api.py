"""The Python API: a model by name or path, frames in, label maps and overlays out.

>>> import segrt                                                     # doctest: +SKIP
>>> seg = segrt.Segmenter("fcn8s_camvid")        # a shipped name, or a .onnx/.engine/.pt path
>>> labels = seg(frame_bgr)                      # uint8 (H, W) class indices at the frame's size
>>> seg.classes[labels[400, 300]]
'Road'
>>> image = seg.overlay(frame_bgr, labels)       # BGR, the colours blended over the frame
>>> for frame, labels in seg.stream("dashcam.mp4"):   # any source `segrt run` takes
...     ...

The same preprocessing, backends and overlay as ``segrt run``; torch is never imported for
ONNX or TensorRT models.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from segrt.engines.base import open_backend
from segrt.engines.manifest import check_labels
from segrt.errors import SegrtError
from segrt.preprocess import Preprocessor


class Segmenter:
    """A loaded model. ``model``: a shipped model's name (``segrt models``), a file path, or
    None for the shipped default of ``device`` (cpu, cuda, tensorrt; an ONNX file on
    ``tensorrt`` is built into a cached engine on first use).

    ``segrt run`` and ``segrt eval`` open their models through this class too: ``backend`` is
    the opened backend (what the pipelined loop feeds batches), ``renderer`` the overlay
    (``legend``, ``hud``, ``mode`` and ``classes`` are ``segrt run``'s options of those names;
    its ``controls`` are the run's window/keyboard state, which the app shares with the sinks)."""

    def __init__(self, model: str | Path | None = None, device: str = "cpu", threads: int = 0,
                 alpha: float = 0.5, palette: str = "model", *, rebuild: bool = False, legend: bool = False,
                 hud: bool = False, mode: str = "overlay", classes: Sequence[str] = ()) -> None:
        from segrt.engines.zoo import default_for, resolve_model
        from segrt.realtime.overlay import Overlay

        self.path = resolve_model(model) if model is not None else default_for(device)
        self.backend = open_backend(self.path, threads=threads, device=device, rebuild=rebuild)
        self.backend.__enter__()
        try:
            m = self.backend.manifest
            self.manifest = m
            self.classes: tuple[str, ...] = m.classes
            self._prep: Preprocessor | None = None  # made on the first call: the run loop brings its own
            self._x: np.ndarray | None = None
            try:
                self.renderer = Overlay(m.classes, palette_for(m, palette), alpha, legend, hud, mode, classes)
            except ValueError as exc:  # unknown --classes, alpha out of 0..1, unknown mode
                text = str(exc)  # Overlay's and Controls' messages start with what they refuse
                flag = "classes" if text.startswith("classes") else "alpha" if text.startswith("alpha") else "mode"
                raise SegrtError(f"--{flag}: {text}") from None
        except BaseException:
            self.close()
            raise

    @property
    def palette(self) -> tuple[tuple[int, int, int], ...]:
        """RGB colour per class, as the overlay draws them."""
        return self.renderer.palette

    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
        """uint8 (H, W) class indices for a uint8 (H, W, 3) BGR frame, at the frame's size."""
        if not (isinstance(frame_bgr, np.ndarray) and frame_bgr.dtype == np.uint8 and frame_bgr.ndim == 3
                and frame_bgr.shape[2] == 3):
            got = "None (cv2.imread gives None for a file it cannot read; cv2.VideoCapture.read at the end)" \
                if frame_bgr is None else (f"{frame_bgr.dtype} {frame_bgr.shape}" if isinstance(frame_bgr, np.ndarray)
                                           else type(frame_bgr).__name__)
            raise ValueError(f"expected a uint8 (H, W, 3) BGR frame, as cv2.imread or cv2.VideoCapture give; got {got}")
        if self._x is None or self._prep is None:  # on first use: the run loop brings its own batches
            self._x, self._prep = self.backend.input_buffer(1), Preprocessor(self.manifest.preprocess)
        self._prep(frame_bgr, out=self._x[0])
        small = self.backend.infer(self._x)[0]
        check_labels(small, self.manifest, self.path)
        return cv2.resize(small, (frame_bgr.shape[1], frame_bgr.shape[0]), interpolation=cv2.INTER_NEAREST)

    def overlay(self, frame_bgr: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """The frame with its class colours blended in (a new BGR array)."""
        labels = self(frame_bgr) if labels is None else labels
        color = self.renderer.colorize_to(labels, (frame_bgr.shape[1], frame_bgr.shape[0]))
        return self.renderer.compose(frame_bgr, color).copy()

    def stream(self, source: str, **options) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(frame, labels) for every frame of ``source`` (a video, folder, camvid:val, 0, …)."""
        from segrt.realtime.sources import open_source

        with open_source(str(source), **options) as src:
            while (frame := src.read()) is not None:
                frame = frame.copy()  # sources may reuse their buffer
                yield frame, self(frame)

    def close(self) -> None:
        self.backend.__exit__(None, None, None)

    def __enter__(self) -> "Segmenter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def palette_for(manifest, name: str) -> tuple[tuple[int, int, int], ...]:
    """The colours to draw with: the model's own (``model``) or ``contrast``."""
    from segrt.realtime.overlay import named_palette

    return named_palette(name, manifest.classes, manifest.palette)

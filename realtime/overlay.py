"""Colourised label maps blended onto frames, a class legend and a HUD.

Pure numpy/cv2 functions (shapes and dtypes in each docstring) plus :class:`Overlay`, which
owns the buffers so the per-frame path allocates nothing once the frame size is known.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import cv2
import numpy as np

from segrt.realtime.controls import Controls

FONT = cv2.FONT_HERSHEY_SIMPLEX


# High-contrast colours (RGB) by class name: no two road-scene classes alike, none grey or
# sky-blue, so Sky, Road and Car stand out on real footage. Other classes take CONTRAST_CYCLE.
CONTRAST = {"Sky": (0, 210, 255), "Building": (200, 80, 0), "Pole": (170, 170, 255), "Road": (255, 0, 255),
            "Pavement": (255, 150, 0), "Tree": (0, 200, 0), "SignSymbol": (255, 255, 0), "Fence": (150, 95, 40),
            "Car": (0, 40, 200), "Pedestrian": (255, 40, 40), "Bicyclist": (0, 255, 170)}
CONTRAST_CYCLE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                  (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
                  (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
                  (128, 128, 0), (255, 215, 180), (0, 0, 128), (255, 255, 255))
PALETTES = ("model", "contrast")


def named_palette(name: str, classes: Sequence[str],
                  model_palette: Sequence[Sequence[int]]) -> tuple[tuple[int, int, int], ...]:
    """The colours to draw ``classes`` with: the model's own, or the high-contrast set."""
    if name == "model":
        return tuple((int(r), int(g), int(b)) for r, g, b in model_palette)
    if name == "contrast":
        return tuple(CONTRAST.get(c, CONTRAST_CYCLE[i % len(CONTRAST_CYCLE)]) for i, c in enumerate(classes))
    raise ValueError(f"palette {name!r}: choose one of {', '.join(PALETTES)}")


def bgr_lut(palette_rgb: Sequence[Sequence[int]]) -> np.ndarray:
    """RGB palette (C rows) → uint8 (256, 3) BGR lookup table; labels ≥ C map to black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(palette_rgb)] = np.asarray(palette_rgb, np.uint8)[:, ::-1]
    return lut


def colorize(labels: np.ndarray, lut: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 (h, w) labels → uint8 (h, w, 3) BGR colours via ``lut`` (256, 3).

    OpenCV's user colour map is this exact table look-up, 5x faster than ``np.take``."""
    labels = np.ascontiguousarray(labels, np.uint8)
    return cv2.applyColorMap(labels, np.ascontiguousarray(lut.reshape(256, 1, 3)), dst=out)


def blend(frame: np.ndarray, color: np.ndarray, alpha: float, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 (H, W, 3) frame and colour image of the same shape → (1-alpha)·frame + alpha·color."""
    return cv2.addWeighted(frame, 1.0 - alpha, color, alpha, 0.0, dst=out)


def render_legend(classes: Sequence[str], palette_rgb: Sequence[Sequence[int]],
                  scale: float = 0.5) -> np.ndarray:
    """A uint8 (h, w, 3) BGR legend: one swatch and name per class, on dark grey."""
    thickness = 1
    (_, th), base = cv2.getTextSize("Ag", FONT, scale, thickness)
    row = th + base + 6
    width = max(cv2.getTextSize(c, FONT, scale, thickness)[0][0] for c in classes) + row + 16
    img = np.full((row * len(classes) + 8, width, 3), 32, np.uint8)
    for i, (name, rgb) in enumerate(zip(classes, palette_rgb, strict=True)):
        y = 4 + i * row
        cv2.rectangle(img, (6, y + 3), (6 + row - 6, y + row - 3), tuple(int(v) for v in rgb[::-1]), -1)
        cv2.putText(img, name, (row + 8, y + th + 3), FONT, scale, (240, 240, 240), thickness, cv2.LINE_AA)
    return img


def draw_hud(img: np.ndarray, lines: Sequence[str], scale: float = 0.6) -> None:
    """Writes ``lines`` top-left on ``img`` (uint8 H×W×3) in place, white on a dark box.

    A box rather than an outline: since OpenCV 5, text drawn thicker is also wider, so an
    outline drawn with a thick pen no longer lines up with the text drawn on top of it.
    """
    sizes = [cv2.getTextSize(t, FONT, scale, 1) for t in lines]
    line_h = max(h + base for (_, h), base in sizes) + 4
    width = max(w for (w, _), _ in sizes)
    cv2.rectangle(img, (4, 4), (16 + width, 10 + line_h * len(lines)), (24, 24, 24), -1)
    for i, text in enumerate(lines):
        y = 6 + line_h * (i + 1) - sizes[i][1] - 2
        cv2.putText(img, text, (10, y), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


class Overlay:
    """Composes label maps onto frames at the frame's own resolution.

    The label map is colourised at network resolution and then resized nearest-neighbour to
    the frame: identical to resizing the labels first (nearest never mixes labels), but it
    colourises 6x fewer pixels at 960x540.
    """

    def __init__(self, classes: Sequence[str], palette_rgb: Sequence[Sequence[int]],
                 alpha: float = 0.5, legend: bool = True, hud: bool = True, mode: str = "overlay",
                 only: Sequence[str] = (), controls: Controls | None = None) -> None:
        # what a viewer changes with window keys (mode, alpha): the app's, when it passes them
        self.controls = controls or Controls(mode=mode, alpha=alpha)  # validates both
        self.hud = hud
        by_lower = {c.lower(): c for c in classes}  # --classes road,car means Road,Car
        unknown = [c for c in only if c.lower() not in by_lower]
        only = [by_lower[c.lower()] for c in only if c.lower() in by_lower]
        if unknown:
            raise ValueError(f"classes {', '.join(unknown)} are not the model's; it has: {', '.join(classes)}")
        palette = [p for p in palette_rgb]
        self.palette = tuple(tuple(int(v) for v in p) for p in palette)
        shown = [c for c in classes if not only or c in only]
        self.lut = bgr_lut(palette)
        # classes left out are transparent: the frame shows through (black in mask mode)
        self.keep: np.ndarray | None = None
        if only:
            self.keep = np.zeros(256, bool)
            self.keep[[classes.index(c) for c in only]] = True
        self.legend = render_legend(shown, [palette[classes.index(c)] for c in shown]) if legend else None
        self._small: np.ndarray | None = None
        self._big: np.ndarray | None = None
        self._labels_big: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._out: np.ndarray | None = None

    def clone(self) -> "Overlay":
        """The same classes, colours and settings, sharing the controls, with buffers of its own
        (one per stream of a multi-stream run: frames of different sizes, rendered in turn)."""
        twin = copy.copy(self)
        twin._small = twin._big = twin._labels_big = twin._labels = twin._out = None
        return twin

    @property
    def alpha(self) -> float:
        return self.controls.alpha

    def colorize_to(self, labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """uint8 (h, w) labels → uint8 (H, W, 3) colours at ``size`` = (W, H)."""
        if self._small is None or self._small.shape[:2] != labels.shape:
            self._small = np.empty(labels.shape + (3,), np.uint8)
        if self._big is None or self._big.shape[1::-1] != size:
            self._big = np.empty((size[1], size[0], 3), np.uint8)
        colorize(labels, self.lut, out=self._small)
        cv2.resize(self._small, size, dst=self._big, interpolation=cv2.INTER_NEAREST)
        self._labels = labels
        return self._big

    def compose(self, frame: np.ndarray, color: np.ndarray, hud_lines: Sequence[str] = ()) -> np.ndarray:
        """Mode (overlay, mask, side by side) + legend + HUD into a reused uint8 buffer, which
        is returned: (H, W, 3), or (H, 2W, 3) side by side."""
        mode = self.controls.mode
        shape = (frame.shape[0], frame.shape[1] * (2 if mode == "side" else 1), 3)
        if self._out is None or self._out.shape != shape:
            self._out = np.empty(shape, np.uint8)
        w = frame.shape[1]
        if mode == "overlay":
            out = blend(frame, color, self.alpha, out=self._out)
        elif mode == "mask":
            np.copyto(self._out, color)
            out = self._out
        else:
            self._out[:, :w] = frame
            self._out[:, w:] = color
            out = self._out
        if self.keep is not None and self._labels is not None:
            if self._labels_big is None or self._labels_big.shape != frame.shape[:2]:
                self._labels_big = np.empty(frame.shape[:2], np.uint8)
            cv2.resize(self._labels, (w, frame.shape[0]), dst=self._labels_big, interpolation=cv2.INTER_NEAREST)
            hidden = ~self.keep[self._labels_big]
            region = out[:, w:] if mode == "side" else out[:, :w]
            region[hidden] = 0 if mode != "overlay" else frame[hidden]
        if self.legend is not None:
            lh, lw = self.legend.shape[:2]
            h, w = out.shape[:2]
            if lh <= h and lw <= w:  # a legend bigger than the frame is left out, not clipped
                out[h - lh:, w - lw:] = self.legend
        if self.hud and hud_lines:
            draw_hud(out, hud_lines)
        return out

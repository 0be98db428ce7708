"""Steadier labels on video: each pixel's label is the median of three frames in time, the
frames before and after first moved along the optical flow onto this one.

A pixel whose label flips for one frame (A B A: compression noise on a grey sky, a shadow)
keeps its label; an edge the camera's motion moves stays where this frame has it, because
frame n is filtered with frame n+1 already in hand and both neighbours are moved onto frame
n first (OpenCV's DIS flow on grey frames about 256 pixels wide).
Things that move on their own (a person, a car: :data:`MOVERS`) are left as the model labels
them in each frame, neither taken away nor put in: the flow, measured on small grey frames,
misses fast small things, and the median would erase them (pedestrians pasted on CamVid
frames, moving 5 % of the width a frame, kept 9 % of their pixels without this rule, against
42 % unfiltered; ``benchmarks/results/steady_objects.json``).
The costs: one frame of latency, and an object the flow misses that covers a pixel for a
single frame only (a thin pole racing past the edge of the view) is dropped there.

Measured on the CPU default: on three held-out driving clips 21-36 % fewer pixels change
label a frame (``benchmarks/results/flicker_steady_*.json``); on CamVid val frames moved as a
camera moves (zooms of 2-5 %, pans of 1-6 % of the width a frame), mIoU 0.00-0.24 higher
(``benchmarks/results/steady_motion.json``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

import cv2
import numpy as np

T = TypeVar("T")

FLOW_WIDTH = 256  # about the width of the grey frames the flow is measured on
# classes of things that move on their own (CamVid's, Cityscapes', IDD's and common names):
# matched in lower case, with _ and - as spaces and a plural s dropped
MOVERS = frozenset({"car", "pedestrian", "bicyclist", "person", "people", "rider", "truck", "bus", "train",
                    "motorcycle", "motorbike", "bicycle", "motorcyclist", "cyclist", "vehicle", "animal",
                    "living thing", "autorickshaw", "caravan", "trailer"})


def is_mover(name: str) -> bool:
    key = " ".join(str(name).lower().replace("_", " ").replace("-", " ").split())
    return key in MOVERS or (key.endswith("s") and key[:-1] in MOVERS)


def movers(classes) -> np.ndarray:
    """bool (256,): which label values of a model with ``classes`` (names) are :data:`MOVERS`."""
    classes = list(classes)
    if len(classes) > 256:
        raise ValueError(f"{len(classes)} classes: label maps are uint8, 256 classes at most")
    table = np.zeros(256, bool)
    table[[i for i, c in enumerate(classes) if is_mover(c)]] = True
    return table


def median3(before: np.ndarray, now: np.ndarray, after: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Per pixel, the median in time of three label maps: where the frames either side agree,
    their label; elsewhere this frame's own (a new array). ``keep`` (bool (256,), see
    :func:`movers`): labels the median neither takes away nor puts in (where this frame or
    the frames either side have one, this frame's label stands)."""
    agree = before == after
    if keep is not None:
        agree &= ~(_lookup(keep, now) | _lookup(keep, before))
    return np.where(agree, before, now)


def _lookup(table: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``table[labels]``; for uint8 labels by cv2.LUT (0.07 ms against 0.4 for 416x224)."""
    if labels.dtype != np.uint8 or labels.ndim == 0:
        return table[labels]
    flat = np.ascontiguousarray(labels).reshape(-1, 1)  # any shape: cv2 reads a third axis as channels
    return cv2.LUT(flat, table.view(np.uint8)).reshape(labels.shape).view(bool)


def small_gray(frame_bgr: np.ndarray) -> np.ndarray:
    """The frame as the flow reads it: grey, shrunk a whole number of times to about
    FLOW_WIDTH wide (grey first; then halved while the factor and both sides are even, as a
    bilinear resize to exactly half is the mean of each 2x2 block: 0.08 ms for 960x540 against
    0.7 for one INTER_AREA resize; what is left by INTER_AREA)."""
    k = max(1, round(frame_bgr.shape[1] / FLOW_WIDTH))
    size = (max(1, frame_bgr.shape[1] // k), max(1, frame_bgr.shape[0] // k))
    gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
    while k % 2 == 0 and gray.shape[0] % 2 == 0 and gray.shape[1] % 2 == 0:  # exact halves only
        gray = cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2), interpolation=cv2.INTER_LINEAR)
        k //= 2
    if gray.shape[::-1] != size:
        return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray.copy() if gray is frame_bgr else gray  # kept between frames: never the caller's buffer


def warp_back(labels: np.ndarray, flow: np.ndarray, inside: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Another frame's ``labels`` carried onto this one: each pixel takes the label where the
    flow says it was there. ``flow`` (h, w, 2) at any size: this frame → the other, in pixels
    of that size, as DIS measures it. Returns (labels, inside): pixels whose source lies
    outside the other frame (new at the border) are not ``inside`` (and take the nearest
    border label); ``inside=False`` skips that mask (None)."""
    h, w = labels.shape
    fh, fw = flow.shape[:2]
    flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
    x = flow[..., 0] * np.float32(w / fw) + np.arange(w, dtype=np.float32)[None, :]
    y = flow[..., 1] * np.float32(h / fh) + np.arange(h, dtype=np.float32)[:, None]
    out = cv2.remap(labels, x, y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return out, ((x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)) if inside else None


@dataclass(frozen=True)
class _Frame(Generic[T]):
    labels: np.ndarray
    gray: np.ndarray | None     # for the flow; None: the neighbours are not moved
    back: np.ndarray | None     # the flow from this frame to the one before it
    payload: T


class TemporalMedian(Generic[T]):
    """Filters a stream of label maps one frame behind: :meth:`push` takes frame n (its labels,
    what goes with it, and the frame itself for the flow) and returns frame n-1, filtered, with
    what came with it; :meth:`flush` returns the last frame at the stream's end. The first and
    last frames have one neighbour only and pass unchanged. Without frames (``None``) the
    neighbours are not moved: the plain median, for a camera that does not move.

    One flow a frame: frame n's flow back to frame n-1 moves frame n-1's labels onto frame n
    (when frame n's turn comes), and, reversed, frame n's labels onto frame n-1.

    ``keep`` (bool (256,), see :func:`movers`): labels that stand where this frame has them."""

    def __init__(self, keep: np.ndarray | None = None) -> None:
        if keep is not None:
            keep = np.asarray(keep, bool)
            if keep.shape != (256,):
                raise ValueError(f"keep: a bool table of 256 labels (see movers()), not shape {keep.shape}")
        self.keep = keep if keep is not None and keep.any() else None  # no movers: no lookups a frame
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._before: np.ndarray | None = None  # frame n-2's labels
        self._held: _Frame[T] | None = None      # frame n-1, waiting for frame n

    def push(self, labels: np.ndarray, payload: T, frame: np.ndarray | None = None) -> tuple[np.ndarray, T] | None:
        held = self._held
        gray = small_gray(frame) if frame is not None else None
        # a frame of another size (a folder of mixed pictures) is a cut: nothing is filtered across it
        cut = held is not None and (labels.shape != held.labels.shape or _shape(gray) != _shape(held.gray))
        back = None
        if held is not None and not cut and gray is not None and held.gray is not None and min(gray.shape) >= 16:
            back = self._flow.calc(gray, held.gray, None)  # DIS needs 16 pixels a side or so
        self._held = _Frame(labels, gray, back, payload)
        if held is None:
            return None
        if self._before is None or cut:
            out = held.labels.copy()  # the caller may edit what it gets; the filter keeps held.labels
        else:
            before = self._before if held.back is None else warp_back(self._before, held.back, inside=False)[0]
            after = labels if back is None else warp_back(labels, -back, inside=False)[0]
            out = median3(before, held.labels, after, self.keep)
        self._before = None if cut else held.labels
        return out, held.payload

    def flush(self) -> tuple[np.ndarray, T] | None:
        held, self._held, self._before = self._held, None, None
        return None if held is None else (held.labels.copy(), held.payload)

    @property
    def held(self) -> T | None:
        """What came with the frame held back, if one is."""
        return None if self._held is None else self._held.payload


class StreamFilter:
    """One stream's filter in ``segrt run``'s loop, fed its inferred frames in order (dataclasses
    with ``labels``, ``steady_s`` and ``captured``: index, capture time, frame) and giving them
    back one behind, their labels filtered and ``steady_s`` the time that took. A frame that
    does not follow the one before (``captured.cut``: a ``--loop`` seam, a reopened stream; or,
    live, captured over GAP_S later) is a cut: the held frame goes out as it is. Live, a held
    frame that waited GAP_S for the next goes out as it is too (an outage or a slow model should
    not hold it)."""

    GAP_S = 1.0

    def __init__(self, live: bool, classes) -> None:
        self.live = live
        self.median: TemporalMedian = TemporalMedian(movers(classes))
        self.pushed = 0               # frames in, all told
        self._since = 0.0             # when the held frame came in

    def push(self, item) -> list:
        """The frames ready to write: none, one, or two across a cut."""
        t0 = time.perf_counter()
        c, held = item.captured, self.median.held
        out = []
        if held is not None and (c.cut or (self.live and c.t_capture - held.captured.t_capture > self.GAP_S)):
            out = self.flush()
        self.pushed += 1
        self._since = time.perf_counter()
        ready = self.median.push(item.labels, item, c.frame)
        if ready is not None:
            out.append(replace(ready[1], labels=ready[0], steady_s=time.perf_counter() - t0))
        return out

    def stale(self) -> bool:
        """A live stream's held frame has waited GAP_S for the next one."""
        return self.live and self.median.held is not None and time.perf_counter() - self._since > self.GAP_S

    def due(self, ended: bool, taken: int) -> bool:
        """The held frame should go now: its stream has ended (``ended``) and every frame it
        took (``taken``) is in, or it is stale."""
        return (ended and self.pushed >= taken) or self.stale()

    def flush(self) -> list:
        """The held frame, as it is (none if none is held)."""
        held = self.median.flush()
        return [] if held is None else [replace(held[1], labels=held[0])]


def _shape(a: np.ndarray | None) -> tuple[int, ...] | None:
    return None if a is None else a.shape

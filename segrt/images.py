"""Reading images safely: dimensions come from the file header before anything is decoded.

A 109 KB PNG can declare 30000 x 30000 pixels (2.7 GB decoded); such a file is refused with a
one-line error instead of exhausting memory. ``MAX_SIDE`` is the documented limit; OpenCV's
own pixel limit (set by the CLI through ``OPENCV_IO_MAX_IMAGE_PIXELS``) covers formats whose
header is not parsed here.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from segrt.errors import DataError
from segrt.files import shown

MAX_SIDE = 16384  # pixels per side, for images, videos and model inputs
# what an image folder source (segrt run FOLDER, calibration folders) reads
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP, GIF or WebP header; None for other formats."""
    with open(path, "rb") as f:
        head = f.read(32)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
            return struct.unpack(">II", head[16:24])
        if head[:2] == b"BM" and len(head) >= 26:
            w, h = struct.unpack("<ii", head[18:26])
            return abs(w), abs(h)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", head[6:10])
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
            if head[12:16] == b"VP8X":
                return (int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1)
            if head[12:16] == b"VP8 ":
                w, h = struct.unpack("<HH", head[26:30])
                return w & 0x3FFF, h & 0x3FFF
            return None
        if head[:2] == b"\xff\xd8":
            return _jpeg_size(f)
    return None


def _jpeg_size(f) -> tuple[int, int] | None:
    f.seek(2)
    for _ in range(10000):  # markers until the first frame header
        byte = f.read(1)
        while byte and byte != b"\xff":
            byte = f.read(1)
        while byte == b"\xff":
            byte = f.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        length = f.read(2)
        if len(length) < 2:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            data = f.read(5)
            if len(data) < 5:
                return None
            h, w = struct.unpack(">HH", data[1:5])
            return w, h
        f.seek(struct.unpack(">H", length)[0] - 2, 1)
    return None


def check_size(width: int, height: int, what: str) -> None:
    if width > MAX_SIDE or height > MAX_SIDE:
        raise DataError(f"{what}: {width}x{height} pixels is over the {MAX_SIDE}-pixel-per-side limit; scale it "
                        "down first")


def read_image(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """``cv2.imread`` after a header check of the dimensions; one-line errors naming the file."""
    try:
        size = image_size(path)
    except OSError as exc:
        raise DataError(f"{shown(path)}: cannot read ({exc.strerror}); check the path") from None
    if size is not None:
        check_size(*size, shown(path))
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DataError(f"{shown(path)}: cannot be read as an image; the file is missing, corrupt, or over "
                        f"{MAX_SIDE}x{MAX_SIDE} pixels")
    return image

"""Training augmentation as pure numpy/cv2 functions (torch-free, testable).

All take and return uint8 (H, W, 3) RGB images and uint8 (H, W) label maps.
"""

from __future__ import annotations

import cv2
import numpy as np


def random_scale_crop(image: np.ndarray, label: np.ndarray, out_w: int, out_h: int,
                      base_scale: float, scale_range: tuple[float, float], ignore: int,
                      rng: np.random.Generator, aspect: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Resize by ``base_scale * U(scale_range)`` (the height by ``aspect`` times that), then crop
    (or pad) to ``out_w`` x ``out_h``.

    ``base_scale`` maps the dataset resolution to the network's, so a scale of 1.0 shows the
    network objects at the size it sees at run time. ``aspect`` above 1 stretches the frame
    vertically, below 1 squeezes it: what a network of one aspect ratio sees of a camera of
    another. Padding is black and ``ignore`` in the label, so padded pixels do not count in
    the loss.
    """
    s = base_scale * rng.uniform(*scale_range)
    h, w = label.shape
    nw, nh = max(1, round(w * s)), max(1, round(h * s * aspect))
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    label = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST)
    ph, pw = max(out_h - nh, 0), max(out_w - nw, 0)
    if ph or pw:
        image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        label = cv2.copyMakeBorder(label, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=ignore)
    y = int(rng.integers(0, label.shape[0] - out_h + 1))
    x = int(rng.integers(0, label.shape[1] - out_w + 1))
    return image[y:y + out_h, x:x + out_w], label[y:y + out_h, x:x + out_w]


def random_aspect(rng: np.random.Generator, aspect_range: tuple[float, float]) -> float:
    """A height/width stretch drawn log-uniformly from ``aspect_range``, so 0.5x and 2x are as
    likely as each other."""
    lo, hi = aspect_range
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def random_hflip(image: np.ndarray, label: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if rng.random() < 0.5:
        return image[:, ::-1], label[:, ::-1]
    return image, label


def colour_cast(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A random white balance: each colour channel scaled by its own factor in 1 ± ``strength``.
    CamVid's skies are overcast grey; a cast turns some of them blue or warm, as other footage is."""
    gains = 1 + rng.uniform(-strength, strength, size=3).astype(np.float32)
    return np.clip(image.astype(np.float32) * gains, 0, 255).astype(np.uint8)


def photometric(image: np.ndarray, rng: np.random.Generator, strength: float = 0.25) -> np.ndarray:
    """Random brightness, contrast and saturation, each by up to ±``strength``."""
    x = image.astype(np.float32)
    gray = x.mean(axis=2, keepdims=True)
    x = gray + (x - gray) * (1 + rng.uniform(-strength, strength))  # saturation
    x = (x - x.mean()) * (1 + rng.uniform(-strength, strength)) + x.mean()  # contrast
    x = x * (1 + rng.uniform(-strength, strength))  # brightness
    return np.clip(x, 0, 255).astype(np.uint8)


def haze(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, p: float,
         sky: int | None) -> np.ndarray:
    """With probability ``p``, the frame as on an overcast or hazy day: the sky (pixels labelled
    ``sky``) repainted, 70-100 %, as a flat airlight of random grey (90-240 levels, a slight tint
    and a top-to-bottom grade), and the rest faded towards it by up to 35 %, most at the top
    of the frame (farther away) and not at all in its lower 40 %: meant for the whole frame,
    before any crop. CamVid's skies are mostly bright; hazy cities' are a mid grey that a model
    trained on CamVid alone calls Building. Void pixels at the sky's edge (a pseudo-label's
    unsure ones) keep their own look, only faded. Without a sky class (``sky`` None), the
    fade alone."""
    draws, tint = rng.random(5), rng.uniform(-8, 8, size=3)  # drawn whatever fires
    if draws[0] >= p:
        return image
    h = image.shape[0]
    down = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]  # 0 at the top, 1 at the bottom
    air = np.clip(90 + 150 * draws[1] + tint + (draws[2] - 0.5) * 40 * (down - 0.5), 0, 255)
    x = image.astype(np.float32)
    fade = 0.35 * draws[3] * np.clip(1 - down / 0.6, 0, 1)
    x = x * (1 - fade) + air * fade
    if sky is not None:
        mix = 0.7 + 0.3 * draws[4]
        on_sky = label == sky
        x[on_sky] = (x * (1 - mix) + air * mix)[on_sky]
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def degrade(image: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Each with probability ``p``, in the order a camera and its encoder would apply them:
    exposure (gamma 0.67-1.5), optical blur (Gaussian, sigma 0.3-1.5 px), sensor noise
    (Gaussian, sigma 2-10 levels) and compression (JPEG quality 20-85, the blocking and ringing
    of cheap dashcams and streamed video). CamVid is 367 clean frames from one camera; users'
    footage is not."""
    draws = rng.random(4)
    params = rng.random(4)  # drawn whatever fires, so one degradation never shifts another's numbers
    x = image
    if draws[0] < p:
        gamma = float(np.exp((params[0] * 2 - 1) * np.log(1.5)))
        lut = np.clip(255 * (np.arange(256) / 255) ** gamma + 0.5, 0, 255).astype(np.uint8)
        x = lut[x]
    if draws[1] < p:
        x = cv2.GaussianBlur(x, (0, 0), 0.3 + 1.2 * float(params[1]))
    if draws[2] < p:
        noise = rng.normal(0, 2 + 8 * float(params[2]), x.shape).astype(np.float32)
        x = np.clip(x.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if draws[3] < p:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(x), [cv2.IMWRITE_JPEG_QUALITY, 20 + int(65 * params[3])])
        x = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else x
    return np.ascontiguousarray(x)

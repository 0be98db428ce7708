"""Settings of ``segrt run`` (YAML: configs/run/*.yaml; CLI flags override)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class RunConfig:
    alpha: float = 0.5        # overlay opacity: 0 shows the frame, 1 only the label colours
    legend: bool = True
    hud: bool = True
    # each pixel's label the median of three frames in time (segrt.realtime.steady): 21-36 % less
    # flicker on the held-out clips, one frame of latency
    steady: bool = False
    threads: int = 0          # ONNX Runtime intra-op threads per model call; 0 = the cores, split between workers
    workers: int = 0          # model calls at once, each on its own thread (ONNX Runtime on CPU); 0 = auto
    # where the model runs: ONNX Runtime's CPU, CUDA or TensorRT provider (.onnx), torch's
    # cpu/cuda (.pt); .engine files always run on TensorRT
    device: Literal["cpu", "cuda", "tensorrt"] = "cpu"
    rebuild: bool = False     # rebuild a TensorRT engine made for another TensorRT or GPU
    image_fps: float = 10.0   # playback rate of videos written from image folders
    # 'm' in the window cycles the first three; "labels" writes each frame's class indices as a
    # PNG (uint8, the frame's size) into a folder, with classes.json beside them
    mode: Literal["overlay", "mask", "side", "labels"] = "overlay"
    classes: tuple[str, ...] = ()   # colour only these classes (names); empty = all
    # "model": the manifest's colours (CamVid's own for the shipped models); "contrast": colours
    # that stay apart on real footage (CamVid's make Road and Car both purple, Sky grey)
    palette: Literal["model", "contrast"] = "model"
    realtime: bool = False    # replay files at their native FPS, dropping frames like a camera
    realtime_fps: float = 0   # with realtime: replay at this rate instead (0 = the file's own)
    loop: bool = False        # start a file again when it ends (demos, soak tests)
    reconnect_attempts: int = 10    # live streams: reopen attempts per outage; 0 = stop at the first
    reconnect_max_wait: float = 8.0  # seconds between attempts, doubling from 0.5 up to this
    # live streams: seconds of reopening before an outage ends the run (0 = attempts only). A
    # stalled read first waits 5 s and an attempt under way may take 5 s more: with 20, a dead
    # or silent stream ends the run within 30 s
    reconnect_timeout: float = 20.0
    serve_fps: float = 30.0   # most frames per second the browser view encodes
    camera_width: int = 0     # ask a webcam for this mode (0 = its default)
    camera_height: int = 0
    camera_fps: float = 0
    # several sources: frames of different streams share one model call, up to this many (less
    # where the model's batch is fixed), the inference stage waiting at most batch_wait_ms for more
    max_batch: int = 8
    batch_wait_ms: float = 4.0

    def __post_init__(self) -> None:
        import math

        for key, (lo, hi, lo_open) in RANGES.items():
            value = getattr(self, key)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"key '{key}' must be a finite number{_flag(key)}, got {value}")
            if value < lo or value > hi or (lo_open and value == lo):
                low = f"> {lo}" if lo_open else f">= {lo}"
                raise ValueError(f"key '{key}' must be {low} and <= {hi}{_flag(key)}, got {value}")
        for key in ("image_fps", "realtime_fps", "camera_fps", "serve_fps"):  # 0 is "the default"
            if 0 < getattr(self, key) < MIN_FPS:
                raise ValueError(f"key '{key}' must be 0 (the default) or at least {MIN_FPS}{_flag(key)}, got "
                                 f"{getattr(self, key)}")


MIN_FPS = 0.01  # one frame in 100 s; a rate below it is a typo, and 1/rate overflows below 1e-308

# key: (lowest, highest, lowest excluded). One table for the YAML and the command line alike
# (the CLI's flags land here too), checked before anything opens. The upper bounds are far
# beyond any real use; they keep a typo (1e308, 10**9 threads) from reaching a library.
RANGES: dict[str, tuple[float, float, bool]] = {
    "alpha": (0.0, 1.0, False),
    "threads": (0, 1024, False),
    "workers": (0, 64, False),
    "image_fps": (0.0, 1000.0, True),
    "realtime_fps": (0.0, 1000.0, False),
    "reconnect_attempts": (0, 10_000, False),
    "reconnect_max_wait": (0.0, 3600.0, True),
    "reconnect_timeout": (0.0, 86_400.0, False),
    "serve_fps": (0.0, 1000.0, True),
    "camera_width": (0, 16384, False),
    "camera_height": (0, 16384, False),
    "camera_fps": (0.0, 1000.0, False),
    "max_batch": (1, 1024, False),
    "batch_wait_ms": (0.0, 10_000.0, False),
}

# the command-line flag of each key that has one, named in its error: the same check serves both
FLAGS = {"alpha": "--alpha", "threads": "--threads", "workers": "--workers", "realtime_fps": "--realtime-fps",
         "camera_width": "--width", "camera_height": "--height", "camera_fps": "--fps", "max_batch": "--max-batch"}


def _flag(key: str) -> str:
    return f" ({FLAGS[key]} on the command line)" if key in FLAGS else ""

"""Settings of ``segrt run`` (YAML: configs/run/*.yaml; CLI flags override)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class RunConfig:
    alpha: float = 0.5        # overlay opacity: 0 shows the frame, 1 only the label colours
    legend: bool = True
    hud: bool = True
    threads: int = 0          # ONNX Runtime intra-op threads per model call; 0 = the cores, split between workers
    workers: int = 0          # model calls at once, each on its own thread (ONNX Runtime on CPU); 0 = auto
    # where the model runs: ONNX Runtime's CPU, CUDA or TensorRT provider (.onnx), torch's
    # cpu/cuda (.pt); .engine files always run on TensorRT
    device: Literal["cpu", "cuda", "tensorrt"] = "cpu"
    rebuild: bool = False     # rebuild a TensorRT engine made for another TensorRT or GPU
    image_fps: float = 10.0   # playback rate of videos written from image folders
    mode: Literal["overlay", "mask", "side"] = "overlay"  # 'm' in the window cycles them
    classes: tuple[str, ...] = ()   # colour only these classes (names); empty = all
    # "model": the manifest's colours (CamVid's own for the shipped models); "contrast": colours
    # that stay apart on real footage (CamVid's make Road and Car both purple, Sky grey)
    palette: Literal["model", "contrast"] = "model"
    realtime: bool = False    # replay files at their native FPS, dropping frames like a camera
    realtime_fps: float = 0   # with realtime: replay at this rate instead (0 = the file's own)
    loop: bool = False        # start a file again when it ends (demos, soak tests)
    reconnect_attempts: int = 10    # live streams: reopen attempts per outage; 0 = stop at the first
    reconnect_max_wait: float = 8.0  # seconds between attempts, doubling from 0.5 up to this
    serve_fps: float = 30.0   # most frames per second the browser view encodes
    camera_width: int = 0     # ask a webcam for this mode (0 = its default)
    camera_height: int = 0
    camera_fps: float = 0
    # several sources: frames of different streams share one model call, up to this many (less
    # where the model's batch is fixed), the inference stage waiting at most batch_wait_ms for more
    max_batch: int = 8
    batch_wait_ms: float = 4.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"key 'alpha' must be within 0..1, got {self.alpha}")
        if self.threads < 0:
            raise ValueError(f"key 'threads' must be >= 0, got {self.threads}")
        if self.workers < 0:
            raise ValueError(f"key 'workers' must be >= 0, got {self.workers}")
        if self.image_fps <= 0:
            raise ValueError(f"key 'image_fps' must be positive, got {self.image_fps}")
        if self.reconnect_attempts < 0 or self.reconnect_max_wait <= 0:
            raise ValueError("keys 'reconnect_attempts' must be >= 0 and 'reconnect_max_wait' positive")
        if self.realtime_fps < 0:
            raise ValueError(f"key 'realtime_fps' must be >= 0, got {self.realtime_fps}")
        if self.max_batch < 1 or self.batch_wait_ms < 0:
            raise ValueError("keys 'max_batch' must be >= 1 and 'batch_wait_ms' >= 0")
        if self.serve_fps <= 0:
            raise ValueError(f"key 'serve_fps' must be positive, got {self.serve_fps}")

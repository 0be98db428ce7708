"""Training configuration (torch-free, so the CLI can validate a config before importing torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal


def oversampled(side: int, factor: float) -> int:
    """A crop side cut ``factor`` times larger for a teacher, to the nearest multiple of 32."""
    return side if factor == 1.0 else max(32, math.floor(side * factor / 32 + 0.5) * 32)


@dataclass(frozen=True)
class TrainConfig:
    model: str
    # the name the model zoo ships it under [default: <recipe file name>_<dataset>]; lets a
    # second-stage recipe replace the first stage's model
    name: str | None = None
    # which checkpoint the zoo ships: the best on val, or the last epoch's
    ship: Literal["best", "last"] = "best"
    # constructor arguments of the model, e.g. {encoder: resnet50} or {width: 0.5}
    model_args: dict[str, str | int | float | bool | tuple[int, ...]] = field(default_factory=dict)
    # the encoder's pretrained weights: a name the encoder knows ("imagenet"), a state_dict file,
    # or a segrt checkpoint of a model with the same encoder (an encoder already fine-tuned)
    pretrained: str | None = None
    # the encoder's learning rate is lr × this: below 1 keeps pretrained features from being
    # overwritten while the randomly initialised decoder catches up
    encoder_lr_mult: float = 1.0
    # train in NHWC memory order: 1.45x faster for depthwise-heavy encoders on CPU (measured on
    # EfficientNet-Lite0); results are the same up to float rounding
    channels_last: bool = False
    # start from all the weights of a segrt checkpoint of the same model (fine-tuning, or a second
    # stage with a fresh schedule); optimizer and schedule start anew
    init_from: str | None = None
    dataset: Literal["camvid", "cityscapes", "folder", "pairs"] = "camvid"
    input_width: int = 384
    input_height: int = 288
    # training crop (mmseg's crop_size); 0 = the input size. A crop smaller than the input
    # trains faster; the network still runs at the input size for val and inference.
    crop_width: int = 0
    crop_height: int = 0
    # the input size the zoo exports and measures the model at (0 = the input size): a model
    # trained on frames scaled up to 1.25-1.5x can score higher run a little above its input size
    export_width: int = 0
    export_height: int = 0
    epochs: int = 100
    batch_size: int = 8
    lr: float = 3e-3             # AdamW: converges in few epochs from scratch, unlike SGD
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    scale_range: tuple[float, float] = (0.75, 1.5)
    # height/width stretch drawn log-uniformly from this range (1, 1 = off): a network run at a
    # wide input (416x224) sees 4:3 CamVid squeezed (0.72) and KITTI's 3.3:1 frames stretched
    # (1.8); 16:9 dashcams come out undistorted
    aspect_range: tuple[float, float] = (1.0, 1.0)
    # random white balance: each RGB channel scaled by 1 ± this (0 = off). CamVid's skies are
    # overcast; 0.2 shows a model blue and warm ones too
    colour_cast: float = 0.0
    # camera degradations, each applied with this probability (0 = off): exposure (gamma), blur,
    # sensor noise and JPEG compression (train/augment.py: degrade)
    degrade: float = 0.0
    # overcast and hazy days, with this probability (0 = off): the sky repainted as a flat grey
    # of random brightness, the upper frame faded towards it (train/augment.py: haze)
    haze: float = 0.0
    # the splits trained on: "train+val" is the literature's CamVid protocol for a shipped model
    # (468 frames); its "train" twin gives the val figure and every choice made on val
    train_split: Literal["train", "train+val"] = "train"
    # folder-layout datasets (same classes and void value) added to the training frames, e.g.
    # pseudo-labelled driving clips (segrt pseudo-label); never used for val
    extra_data: tuple[str, ...] = ()
    # "enet": w = 1/ln(1.02 + p_class) (Paszke et al.), bounded, so rare classes count
    # without exploding the loss the way raw inverse frequency does. "median_frequency": SegNet's.
    class_weighting: Literal["none", "enet", "median_frequency"] = "enet"
    loss: Literal["ce", "dice", "ce+dice", "ohem"] = "ce"
    # weight of the auxiliary head's loss (0 = none; 0.4 is PSPNet's); for architectures with a
    # natural intermediate tap: fastscnn, fcn8s, deeplabv3plus and unet_resnet34 (ResNet)
    aux_weight: float = 0.0
    # knowledge distillation: a trained segrt checkpoint whose softened predictions on each
    # augmented batch are a second target (same classes; its own input normalisation is applied)
    distill_from: str | None = None
    # that target's loss weight (0 = no distillation) and softmax temperature
    distill_weight: float = 0.0
    distill_temperature: float = 1.0
    # the teacher sees each training crop at this many times the student's resolution: crops are
    # cut that much larger (from frames scaled that much larger) and shrunk for the student, so
    # a small-input student learns what its teacher sees at the input it runs at (1 = off)
    distill_resolution: float = 1.0
    # the teacher's target is the mean of its probabilities on the crop and on its mirror image
    distill_flip: bool = False
    # ... and over the crop resized by each of these (e.g. [0.75, 1.0, 1.25], as --tta flip-ms):
    # a multi-scale teacher's labels hold steadier on video. [1.0] = one scale
    distill_scales: tuple[float, ...] = (1.0,)
    # temporal stability (against flicker on video): each batch is also shown moved as a camera
    # moves between frames (a random zoom of up to 1 + consistency_zoom, panned inside the frame),
    # and the student's prediction there is pulled towards its own prediction on the batch,
    # moved the same way, with this weight (and towards the teacher's target, moved, with the
    # teacher's own weight, when there is one). 0 = off
    consistency_weight: float = 0.0
    consistency_zoom: float = 0.08
    # ... and its pixels changed as the next frame of a compressed video: gain and offset of up
    # to this (normalised input), codec-like noise of half of it. 0 = off
    consistency_jitter: float = 0.0
    # the mean softmax entropy of pixels without a label (void, a pseudo-label's unsure pixels),
    # added to the loss with this weight: decide there too (entropy minimisation). 0 = off
    entropy_weight: float = 0.0
    # the encoder's BatchNorm layers keep the running statistics of their ImageNet weights (eval
    # mode; their scale and shift still learn) for this many first epochs (0 = off)
    encoder_bn_frozen_epochs: int = 0
    schedule: Literal["poly", "cosine"] = "poly"
    # stochastic weight averaging (Izmailov et al., 2018): the learning rate is held where the
    # schedule stands this many epochs before the end, and the weights at the end of each of
    # those epochs are averaged (BatchNorm statistics re-measured); the average replaces best.pt
    # when it scores higher on val. 0 = off
    swa_epochs: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # "auto": bf16 autocast on CUDA (no loss scaling needed), FP32 on CPU
    amp: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_every: int = 5
    seed: int = 0
    threads: int = 0             # torch CPU threads; 0 = all cores

    @property
    def crop(self) -> tuple[int, int]:
        return self.crop_width or self.input_width, self.crop_height or self.input_height

    def __post_init__(self) -> None:
        limits = {"input_width": (32, 8192), "input_height": (32, 8192), "epochs": (1, 100_000),
                  "batch_size": (1, 4096), "eval_every": (1, 100_000), "warmup_epochs": (0, 100_000),
                  "threads": (0, 1024), "seed": (0, 2**32 - 1), "swa_epochs": (0, self.epochs),
                  "encoder_bn_frozen_epochs": (0, self.epochs)}
        for name, (lo, hi) in limits.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ValueError(f"key '{name}' must be in [{lo}, {hi}], got {value}")
        if self.input_width % 32 or self.input_height % 32:
            raise ValueError(
                f"input size {self.input_width}x{self.input_height} must be a multiple of 32 "
                "(the network downsamples 5 times); e.g. 384x288 or 480x352")
        for name in ("export_width", "export_height"):
            size = getattr(self, name)
            if size and (size < 32 or size > 8192 or size % 32):
                raise ValueError(f"key '{name}' must be 0 (= input size) or a multiple of 32 up to 8192, got {size}")
        for name, full in (("crop_width", self.input_width), ("crop_height", self.input_height)):
            crop = getattr(self, name)
            if crop < 0 or crop > full or crop % 32:
                raise ValueError(f"key '{name}' must be 0 (= input size) or a multiple of 32 up to {full}, "
                                 f"got {crop}")
        ranges = {"lr": (0.0, 10.0, False), "weight_decay": (0.0, 10.0, True), "aux_weight": (0.0, 100.0, True),
                  "encoder_lr_mult": (0.0, 10.0, False), "distill_weight": (0.0, 100.0, True),
                  "distill_temperature": (0.0, 100.0, False), "distill_resolution": (1.0, 4.0, True),
                  "colour_cast": (0.0, 0.9, True), "degrade": (0.0, 1.0, True), "haze": (0.0, 1.0, True),
                  "consistency_weight": (0.0, 100.0, True), "consistency_zoom": (0.0, 0.5, False),
                  "consistency_jitter": (0.0, 0.5, True),
                  "entropy_weight": (0.0, 100.0, True)}
        for name, (lo, hi, closed) in ranges.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and (lo <= value if closed else lo < value) and value <= hi):
                raise ValueError(f"key '{name}' must be a number in {'[' if closed else '('}{lo:g}, {hi:g}], "
                                 f"got {value}")
        if self.consistency_jitter and not self.consistency_weight:
            raise ValueError("key 'consistency_jitter' changes the moved view of consistency_weight; "
                             "set consistency_weight > 0 too, or leave it out")
        if (self.distill_weight > 0) != bool(self.distill_from):
            raise ValueError("keys 'distill_from' and 'distill_weight' go together: a teacher checkpoint and a "
                             "weight above 0, or neither")
        for name, side in (("crop_width", self.crop[0]), ("crop_height", self.crop[1])):
            want, got = side * self.distill_resolution, oversampled(side, self.distill_resolution)
            if abs(got / want - 1) > 0.03:
                raise ValueError(f"key 'distill_resolution': {name} {side} x {self.distill_resolution:g} = "
                                 f"{want:.0f} px, not within 3% of a multiple of 32 (the teacher's crop would be "
                                 f"{got}); use e.g. {got / side:.3g}")
        scales = self.distill_scales
        if (not isinstance(scales, (list, tuple)) or not scales or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0.25 <= v <= 4 for v in scales)):
            raise ValueError(f"key 'distill_scales' must be a list of scales in [0.25, 4], e.g. [0.75, 1.0, 1.25]; "
                             f"got {scales!r}")
        object.__setattr__(self, "distill_scales", tuple(float(v) for v in scales))  # frozen
        shaped = self.distill_resolution != 1.0 or self.distill_flip or self.distill_scales != (1.0,)
        if shaped and not self.distill_from:
            raise ValueError("keys 'distill_resolution', 'distill_flip' and 'distill_scales' shape a teacher's target: "
                             "set 'distill_from' and 'distill_weight' too, or leave them out")
        for name, (least, most) in {"scale_range": (0.05, 8), "aspect_range": (0.25, 4)}.items():
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and least <= lo <= hi <= most):
                raise ValueError(f"key '{name}' must be {least:g} <= low <= high <= {most:g}, got {[lo, hi]}")

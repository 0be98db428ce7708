"""Training configuration (torch-free, so the CLI can validate a config before importing torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


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
    # the encoder's pretrained weights: a name the encoder knows ("imagenet") or a state_dict file
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
    epochs: int = 100
    batch_size: int = 8
    lr: float = 3e-3             # AdamW: converges in few epochs from scratch, unlike SGD
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    scale_range: tuple[float, float] = (0.75, 1.5)
    # "enet": w = 1/ln(1.02 + p_class) (Paszke et al.), bounded, so rare classes count
    # without exploding the loss the way raw inverse frequency does. "median_frequency": SegNet's.
    class_weighting: Literal["none", "enet", "median_frequency"] = "enet"
    loss: Literal["ce", "dice", "ce+dice", "ohem"] = "ce"
    # weight of the auxiliary head's loss (0 = none; 0.4 is PSPNet's); for architectures with a
    # natural intermediate tap: fastscnn, fcn8s, deeplabv3plus and unet_resnet34 (ResNet)
    aux_weight: float = 0.0
    schedule: Literal["poly", "cosine"] = "poly"
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
        for name in ("input_width", "input_height", "epochs", "batch_size", "eval_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"key '{name}' must be positive, got {getattr(self, name)}")
        if self.input_width % 32 or self.input_height % 32:
            raise ValueError(
                f"input size {self.input_width}x{self.input_height} must be a multiple of 32 "
                "(the network downsamples 5 times); e.g. 384x288 or 480x352")
        for name, full in (("crop_width", self.input_width), ("crop_height", self.input_height)):
            crop = getattr(self, name)
            if crop < 0 or crop > full or crop % 32:
                raise ValueError(f"key '{name}' must be 0 (= input size) or a multiple of 32 up to {full}, "
                                 f"got {crop}")
        if self.aux_weight < 0:
            raise ValueError(f"key 'aux_weight' must be >= 0, got {self.aux_weight}")
        if not 0 < self.encoder_lr_mult <= 10:
            raise ValueError(f"key 'encoder_lr_mult' must be in (0, 10], got {self.encoder_lr_mult}")
        if self.lr <= 0:
            raise ValueError(f"key 'lr' must be positive, got {self.lr}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"key 'scale_range' must be 0 < low <= high, got {self.scale_range}")

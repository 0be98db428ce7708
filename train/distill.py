"""Knowledge distillation (Hinton et al., 2015; pixel-wise for segmentation as in Liu et al.,
"Structured Knowledge Distillation for Semantic Segmentation", 2019): a trained teacher's
softened class probabilities on the same augmented batch are a second target for the student.

Every pixel gets a soft target, void included, so the student also learns what the teacher
sees where CamVid has no label. The teacher runs in eval mode without gradients on the
student's input tensor, renormalised to the teacher's own mean and std where they differ
(an ImageNet-normalised scratch model can learn from a Lite0 teacher).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from segrt.errors import ConfigError
from segrt.preprocess import Preprocess
from segrt.train import checkpoint


class Distillation:
    """``loss(student_logits, x)``: ``weight`` × T² × mean per-pixel KL(teacher_T ‖ student_T).

    The T² factor keeps the gradient's size independent of the temperature (Hinton et al.).
    """

    def __init__(self, teacher: torch.nn.Module, weight: float, temperature: float,
                 renormalise: tuple[torch.Tensor, torch.Tensor] | None = None, flip: bool = False) -> None:
        self.teacher, self.weight, self.temperature, self.flip = teacher, weight, temperature, flip
        self.renormalise = renormalise  # (scale, shift), each (1, 3, 1, 1): the teacher's input

    @torch.no_grad()
    def soft_targets(self, x: torch.Tensor) -> torch.Tensor:
        if self.renormalise is not None:
            scale, shift = self.renormalise
            x = x * scale + shift
        p = (self.teacher(x).float() / self.temperature).softmax(1)
        if self.flip:  # test-time flip averaging, as `segrt export --tta flip` does
            p = 0.5 * (p + (self.teacher(x.flip(-1)).float() / self.temperature).softmax(1).flip(-1))
        return p

    def loss(self, student: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        target = self.soft_targets(x)
        if target.shape[-2:] != student.shape[-2:]:
            # a teacher that saw the crop at a higher resolution: area-average its probabilities
            larger = all(t >= u for t, u in zip(target.shape[-2:], student.shape[-2:], strict=True))
            target = (F.interpolate(target, size=student.shape[-2:], mode="area") if larger else
                      F.interpolate(target, size=student.shape[-2:], mode="bilinear", align_corners=False))
        log_p = F.log_softmax(student.float() / self.temperature, 1)
        kl = (target * (target.clamp_min(1e-8).log() - log_p)).sum(1)  # (N, H, W)
        return self.weight * self.temperature**2 * kl.mean()


def load_teacher(path: str | Path, classes: list[str], spec: Preprocess, device: torch.device,
                 memory_format: torch.memory_format, weight: float = 1.0, temperature: float = 1.0,
                 flip: bool = False) -> Distillation:
    """Distillation from the network of a segrt checkpoint, frozen; refused when it predicts
    other classes. Inputs are always RGB; a teacher normalised with another mean and std gets
    the student's tensor mapped to its own: x_t = (x_s·std_s + mean_s − mean_t) / std_t."""
    ckpt = checkpoint.load(path)
    if list(ckpt["classes"]) != list(classes):
        raise ConfigError(f"key 'distill_from': {path} predicts {len(ckpt['classes'])} classes "
                          f"({', '.join(ckpt['classes'][:3])}, …), not this dataset's; use a teacher trained on it")
    theirs = Preprocess.from_dict(ckpt["preprocess"])
    renormalise = None
    if (tuple(theirs.mean), tuple(theirs.std)) != (tuple(spec.mean), tuple(spec.std)):
        def column(values) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32).view(1, 3, 1, 1)

        scale = column(spec.std) / column(theirs.std)
        shift = (column(spec.mean) - column(theirs.mean)) / column(theirs.std)
        renormalise = (scale.to(device), shift.to(device))
    net = checkpoint.build_from_checkpoint(ckpt).to(device, memory_format=memory_format)
    for p in net.parameters():
        p.requires_grad_(False)
    return Distillation(net, weight, temperature, renormalise, flip)


def shrink(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The student's view of a crop cut at a teacher's resolution (anti-aliased, as a camera
    at the lower resolution would see it)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def at_label_size(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logits upsampled to the labels' size where they differ, as evaluation scores them."""
    if logits.shape[-2:] == y.shape[-2:]:
        return logits
    return F.interpolate(logits, size=y.shape[-2:], mode="bilinear", align_corners=False)

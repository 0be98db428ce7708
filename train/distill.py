"""Knowledge distillation (Hinton et al., 2015; pixel-wise for segmentation as in Liu et al.,
"Structured Knowledge Distillation for Semantic Segmentation", 2019): a trained teacher's
softened class probabilities on the same augmented batch are a second target for the student.

Every pixel gets a soft target, void included, so the student also learns what the teacher
sees where CamVid has no label. The teacher runs in eval mode without gradients; it reads the
student's input tensor, so both must share the preprocessing (colour order, mean and std).
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

    def __init__(self, teacher: torch.nn.Module, weight: float, temperature: float) -> None:
        self.teacher, self.weight, self.temperature = teacher, weight, temperature

    @torch.no_grad()
    def soft_targets(self, x: torch.Tensor) -> torch.Tensor:
        return (self.teacher(x).float() / self.temperature).softmax(1)

    def loss(self, student: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        target = self.soft_targets(x)
        if target.shape[-2:] != student.shape[-2:]:
            target = F.interpolate(target, size=student.shape[-2:], mode="bilinear", align_corners=False)
        log_p = F.log_softmax(student.float() / self.temperature, 1)
        kl = (target * (target.clamp_min(1e-8).log() - log_p)).sum(1)  # (N, H, W)
        return self.weight * self.temperature**2 * kl.mean()


def load_teacher(path: str | Path, classes: list[str], spec: Preprocess, device: torch.device,
                 memory_format: torch.memory_format) -> torch.nn.Module:
    """The teacher network of a segrt checkpoint, frozen; refused when its classes or input
    normalisation (mean, std; segrt's inputs are always RGB) differ from the student's."""
    ckpt = checkpoint.load(path)
    if list(ckpt["classes"]) != list(classes):
        raise ConfigError(f"key 'distill_from': {path} predicts {len(ckpt['classes'])} classes "
                          f"({', '.join(ckpt['classes'][:3])}, …), not this dataset's; use a teacher trained on it")
    theirs = Preprocess.from_dict(ckpt["preprocess"])
    if (tuple(theirs.mean), tuple(theirs.std)) != (tuple(spec.mean), tuple(spec.std)):
        raise ConfigError(f"key 'distill_from': {path} normalises its input differently from the student "
                          f"(mean {theirs.mean} against {spec.mean}); use a teacher with the same encoder family")
    net = checkpoint.build_from_checkpoint(ckpt).to(device, memory_format=memory_format)
    for p in net.parameters():
        p.requires_grad_(False)
    return net

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
                 renormalise: tuple[torch.Tensor, torch.Tensor] | None = None, flip: bool = False,
                 scales: tuple[float, ...] = (1.0,)) -> None:
        self.teacher, self.weight, self.temperature, self.flip = teacher, weight, temperature, flip
        self.renormalise = renormalise  # (scale, shift), each (1, 3, 1, 1): the teacher's input
        self.scales = tuple(scales)

    @torch.no_grad()
    def soft_targets(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's tempered probabilities on ``x``, averaged with its mirror's (``flip``);
        with more than one of ``scales``, also over ``x`` resized by each (sides rounded to a
        multiple of 32) and the probabilities resized to ``x``'s size, as ``segrt export --tta
        flip-ms`` averages them."""
        if self.renormalise is not None:
            scale, shift = self.renormalise
            x = x * scale + shift
        if self.scales == (1.0,):
            return self._flip_average(x)
        from segrt.train.models.tta import scaled_sizes

        size = tuple(x.shape[-2:])
        total = torch.zeros(())
        for w, h in scaled_sizes(size[1], size[0], self.scales):
            xs = x if (h, w) == size else F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
            p = self._flip_average(xs)
            total = total + (p if tuple(p.shape[-2:]) == size else
                             F.interpolate(p, size=size, mode="bilinear", align_corners=False))
        return total / len(self.scales)

    def _flip_average(self, x: torch.Tensor) -> torch.Tensor:
        p = (self.teacher(x).float() / self.temperature).softmax(1)
        if self.flip:  # test-time flip averaging, as `segrt export --tta flip` does
            p = 0.5 * (p + (self.teacher(x.flip(-1)).float() / self.temperature).softmax(1).flip(-1))
        return p

    def target(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The soft target at the student's output ``size``."""
        target = self.soft_targets(x)
        if tuple(target.shape[-2:]) != tuple(size):
            # a teacher that saw the crop at a higher resolution: area-average its probabilities
            larger = all(t >= u for t, u in zip(target.shape[-2:], size, strict=True))
            target = (F.interpolate(target, size=size, mode="area") if larger else
                      F.interpolate(target, size=size, mode="bilinear", align_corners=False))
        return target

    def divergence(self, student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.weight * self.temperature**2 * kl_mean(target, student.float() / self.temperature)

    def loss(self, student: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.divergence(student, self.target(x, tuple(student.shape[-2:])))


def kl_mean(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of KL(target ‖ softmax(logits)), class axis 1."""
    log_p = F.log_softmax(logits, 1)
    return (target * (target.clamp_min(1e-8).log() - log_p)).sum(1).mean()


class Consistency:
    """Temporal stability learnt from still frames (after the temporal loss of Liu et al.,
    "Efficient Semantic Video Segmentation with Per-frame Inference", ECCV 2020, with a known
    motion in place of optical flow). Between two video frames the camera moves a little:
    mostly a zoom towards the road ahead, and a pan. Each batch is also shown moved so
    (:meth:`motion`, :func:`warp`: a zoom of 1 to 1 + ``zoom``, panned at random but never past
    the frame, so every moved pixel has a source); the student's probabilities on the moved
    batch are pulled, with ``weight``, towards its own on the batch moved the same way (no
    gradient through that side), and, with a teacher, towards the teacher's target moved the
    same way. A model that answers the same scene the same way wherever it sits in the frame
    does not flicker when the scene shifts by a pixel.

    ``weight`` scales the pull towards the student's own moved prediction; the pull towards
    the teacher's moved target is weighted as the teacher's own term (``distill_weight``·T²).
    The moved batch is a second forward pass in train mode: BatchNorm normalises it with its
    own batch statistics and updates the running statistics with it too, as a second batch
    would.

    ``jitter`` > 0 also changes the moved view's pixels as the next frame of a compressed video
    does (:meth:`perturb`): the same scene with a little more or less contrast and light,
    re-encoded. Where two classes meet at low contrast (a road sign against a hazy sky), that
    is what flips labels from one frame to the next."""

    def __init__(self, weight: float, zoom: float, jitter: float = 0.0) -> None:
        self.weight, self.zoom, self.jitter = weight, zoom, jitter

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (normalised input, N, C, H, W) with a contrast gain of 1 ± ``jitter`` (about
        the normalised zero) and a brightness offset of ± ``jitter`` per frame, and noise of
        standard deviation ``jitter`` / 2: half its variance per pixel and channel, half in 8x8
        blocks shared by the channels (a codec's). ``x`` itself when ``jitter`` is 0."""
        if not self.jitter:
            return x
        n, _, h, w = x.shape
        gain = 1 + self.jitter * (2 * torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 1)
        offset = self.jitter * (2 * torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 1)
        blocks = torch.randn(n, 1, -(-h // 8), -(-w // 8), device=x.device, dtype=x.dtype)
        blocks = F.interpolate(blocks, scale_factor=8, mode="nearest")[..., :h, :w]
        noise = (torch.randn_like(x) + blocks) * (self.jitter / 2 / 2 ** 0.5)
        return x * gain + offset + noise

    def motion(self, n: int, device: torch.device) -> torch.Tensor:
        """``n`` random moves as affine matrices (n, 2, 3) in normalised coordinates: output
        pixel u samples the input at u / s + t, with |t| <= 1 - 1/s on each axis."""
        s = 1 + self.zoom * torch.rand(n, device=device)
        room = 1 - 1 / s
        t = (2 * torch.rand(n, 2, device=device) - 1) * room[:, None]
        theta = torch.zeros(n, 2, 3, device=device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / s
        theta[:, :, 2] = t
        return theta

    def moved_view_loss(self, net: torch.nn.Module, x: torch.Tensor, logits: torch.Tensor,
                        student_size: tuple[int, int] | None, distill: Distillation | None = None,
                        target: torch.Tensor | None = None) -> torch.Tensor:
        """The batch ``x`` moved (at its own resolution, then shrunk to ``student_size`` if
        given), through ``net``: :meth:`loss` against ``logits``, the student's on ``x``, plus
        ``distill``'s divergence from its ``target`` on ``x``, moved the same way."""
        theta = self.motion(len(x), x.device)
        moved = warp(x, theta)
        out = net(self.perturb(moved if student_size is None else shrink(moved, student_size)))
        moved_logits = out[0] if isinstance(out, tuple) else out  # WithAux: (main, auxiliary)
        loss = self.loss(moved_logits, logits, theta)
        if target is not None:  # (there is a target only where there is a teacher)
            loss = loss + distill.divergence(moved_logits, warp(target, theta))
        return loss

    def loss(self, moved_logits: torch.Tensor, logits: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """``weight`` × mean KL(warp(p) ‖ p_moved): p from ``logits`` (detached)."""
        target = warp(logits.detach().float().softmax(1), theta)
        return self.weight * kl_mean(target, moved_logits.float())


def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) moved by ``theta`` (:meth:`Consistency.motion`), bilinear, same size."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def load_teacher(path: str | Path, classes: list[str], spec: Preprocess, device: torch.device,
                 memory_format: torch.memory_format, weight: float = 1.0, temperature: float = 1.0,
                 flip: bool = False, scales: tuple[float, ...] = (1.0,)) -> Distillation:
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
    return Distillation(net, weight, temperature, renormalise, flip, scales)


def shrink(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The student's view of a crop cut at a teacher's resolution (anti-aliased, as a camera
    at the lower resolution would see it)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def at_label_size(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logits upsampled to the labels' size where they differ, as evaluation scores them."""
    if logits.shape[-2:] == y.shape[-2:]:
        return logits
    return F.interpolate(logits, size=y.shape[-2:], mode="bilinear", align_corners=False)

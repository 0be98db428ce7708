import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segrt.train.losses import OhemCrossEntropy, build_loss, dice_loss, median_frequency_weights, unlabelled_entropy  # noqa: E402
from segrt.train.trainer import lr_factor  # noqa: E402

IGNORE = 11


def confident(target: torch.Tensor, num_classes: int = 3, right: bool = True) -> torch.Tensor:
    """Logits that put (almost) all probability on the target class, or on another one."""
    cls = target.clamp(0, num_classes - 1) if right else (target.clamp(0, num_classes - 1) + 1) % num_classes
    return torch.nn.functional.one_hot(cls, num_classes).permute(0, 3, 1, 2).float() * 20


def test_dice_is_zero_when_right_one_when_wrong_and_ignores_void():
    # big enough that Dice's +1 smoothing is negligible, as in real batches
    target = torch.tensor([[0, 1], [2, IGNORE]]).repeat(20, 20).unsqueeze(0)
    assert dice_loss(confident(target), target, IGNORE) < 1e-2
    assert dice_loss(confident(target, right=False), target, IGNORE) > 0.99
    wrong_on_void = confident(target)
    void = target[0] == IGNORE
    wrong_on_void[0, :, void] = torch.tensor([0.0, 0.0, 20.0])[:, None]  # void pixels: anything goes
    assert dice_loss(wrong_on_void, target, IGNORE) < 1e-2


def test_ohem_averages_only_the_hard_pixels():
    target = torch.zeros(1, 1, 4, dtype=torch.long)
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 0, 0, :3] = 10.0  # three easy pixels, p(true) ≈ 1
    logits[0, 1, 0, 3] = 10.0   # one hard pixel, p(true) ≈ 0
    loss = OhemCrossEntropy(None, IGNORE, threshold=0.7, min_kept=1)(logits, target)
    assert loss.item() == pytest.approx(10.0, abs=1e-3)  # not diluted by the easy ones
    plain = build_loss("ce", None, IGNORE)(logits, target)
    assert plain.item() < loss.item() / 3


def test_median_frequency_weights_follow_segnet_definition():
    a = np.array([[0, 0, 0, 1]], np.uint8)  # class 0: 3 of 4 pixels, class 1: 1 of 4
    b = np.array([[0, 0, 2, 2]], np.uint8)  # class 0: 2 of 4, class 2: 2 of 4
    w = median_frequency_weights([a, b], 4)
    freq = np.array([5 / 8, 1 / 4, 2 / 4])  # per image where the class appears
    np.testing.assert_allclose(w[:3], np.median(freq) / freq, rtol=1e-6)
    assert w[3] == 0  # never seen


def test_schedules_warm_up_then_decay_to_zero():
    for schedule in ("poly", "cosine"):
        f = lr_factor(schedule, total_steps=100, warmup_steps=10)
        assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0) and f(10) == pytest.approx(1.0)
        assert f(100) == pytest.approx(0.0, abs=1e-9)
    assert lr_factor("cosine", 100, 0)(50) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))


def test_unlabelled_entropy_counts_void_pixels_only_and_its_gradient_makes_them_decide():
    torch.manual_seed(0)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[:, :2] = 255  # half the pixels without a label
    uniform = torch.zeros(2, 3, 4, 4)
    assert unlabelled_entropy(uniform, target, 255).item() == pytest.approx(math.log(3))
    assert unlabelled_entropy(uniform, torch.zeros_like(target), 255).item() == 0.0
    logits = torch.randn(2, 3, 4, 4)
    logits[:, :, 2:] = 0.0  # labelled pixels at the top entropy: they must not count
    sure = torch.zeros(2, 3, 4, 4)
    sure[:, 0] = 20.0
    sure[:, :, 2:] = 0.0
    assert unlabelled_entropy(sure, target, 255).item() < 1e-6
    logits.requires_grad_(True)
    before = unlabelled_entropy(logits, target, 255)
    before.backward()
    assert logits.grad[:, :, 2:].abs().max() == 0  # labelled pixels get no pull
    after = unlabelled_entropy(logits.detach() - 0.5 * logits.grad, target, 255)
    assert after < before
    plain, with_entropy = build_loss("ce", None, 255), build_loss("ce", None, 255, entropy_weight=2.0)
    assert with_entropy(logits, target).item() == pytest.approx(plain(logits, target).item() + 2 * before.item())

"""Temporal stability from still frames (recipe key ``consistency_weight``): the batch shown
moved as a camera moves, and the student pulled towards its own prediction moved the same way."""

import csv
import dataclasses

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from segrt.errors import ConfigError  # noqa: E402
from segrt.train import checkpoint, distill  # noqa: E402
from segrt.train.config import TrainConfig  # noqa: E402
from segrt.train.distill import Consistency, warp  # noqa: E402
from segrt.train.trainer import fit  # noqa: E402

TINY = TrainConfig(model="fastscnn", input_width=128, input_height=96, epochs=1, batch_size=4,
                   warmup_epochs=0, eval_every=1, threads=2)


def test_a_move_zooms_by_at_most_the_set_amount_and_never_samples_outside_the_frame():
    torch.manual_seed(0)
    theta = Consistency(1.0, zoom=0.2).motion(4000, torch.device("cpu"))
    zoom = 1 / theta[:, 0, 0]
    assert torch.equal(theta[:, 0, 0], theta[:, 1, 1]) and (theta[:, 0, 1] == 0).all()
    assert zoom.min() >= 1 and zoom.max() <= 1.2 and zoom.max() > 1.19  # the whole range is drawn
    grid = F.affine_grid(theta, [4000, 1, 24, 32], align_corners=False)
    assert grid.abs().max() <= 1.0 + 1e-6  # every output pixel has a source inside the frame
    pans = theta[:, :, 2].abs() / (1 - 1 / zoom[:, None])
    assert pans.max() > 0.98  # pans reach the edge of the room a zoom leaves


def test_warp_moves_a_picture_as_the_matrix_says():
    x = torch.arange(32.0).repeat(1, 2, 24, 1)  # (1, 2, 24, 32): each column holds its index
    shift = torch.tensor([[[1.0, 0.0, 2 * 3 / 32], [0.0, 1.0, 0.0]]])  # three pixels to the left
    moved = warp(x, shift)
    assert torch.allclose(moved[..., :29], x[..., 3:], atol=1e-5)
    zoom = torch.tensor([[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]])  # 2x towards the centre
    centre = warp(x, zoom)[0, 0, 0]
    assert torch.allclose(centre[15:17], torch.tensor([15.25, 15.75]), atol=1e-5)


def test_a_prediction_that_moves_with_the_picture_costs_nothing_and_one_that_stays_put_does():
    torch.manual_seed(0)
    logits = F.interpolate(torch.randn(2, 5, 6, 8) * 4, size=(24, 32), mode="bilinear", align_corners=False)
    cons = Consistency(1.0, zoom=0.3)
    theta = cons.motion(2, torch.device("cpu"))
    moved = warp(logits.softmax(1), theta).log().requires_grad_(True)
    assert cons.loss(moved, logits, theta).item() == pytest.approx(0.0, abs=1e-5)
    still = logits.clone().requires_grad_(True)
    assert cons.loss(still, still, theta).item() > 0.01
    cons.loss(still, still, theta).backward()
    assert still.grad is not None and still.grad.abs().sum() > 0  # through the moved side only...
    source = logits.clone().requires_grad_(True)
    cons.loss(moved, source, theta).backward()
    assert source.grad is None  # ...never through the side it is pulled towards


def test_training_shows_each_batch_moved_to_the_student_and_the_teachers_target_too(tiny_camvid, tmp_path,
                                                                                      monkeypatch):
    fit(TINY, tiny_camvid, tmp_path / "teacher")
    seen = []
    real_warp = distill.warp
    monkeypatch.setattr(distill, "warp", lambda x, theta: seen.append((x.shape[1], tuple(x.shape[-2:])))
                        or real_warp(x, theta))
    jitters = []
    real_perturb = Consistency.perturb
    monkeypatch.setattr(Consistency, "perturb", lambda self, x: jitters.append(self.jitter) or real_perturb(self, x))
    cfg = dataclasses.replace(TINY, crop_width=64, crop_height=64, distill_from=str(tmp_path / "teacher" / "best.pt"),
                              distill_weight=1.0, distill_resolution=1.5, consistency_weight=1.0,
                              consistency_jitter=0.05)
    fit(cfg, tiny_camvid, tmp_path / "tc")
    batches = [s for s in seen if s[0] == 3]
    # per batch: the picture at the teacher's 96x96, then the student's and the teacher's
    # probabilities (11 classes) at the student's 64x64
    assert batches and all(s == (3, (96, 96)) for s in batches)
    assert seen.count((11, (64, 64))) == 2 * len(batches)
    assert jitters == [0.05] * len(batches)  # the recipe's jitter reaches every moved batch
    row = next(csv.DictReader(open(tmp_path / "tc" / "metrics.csv")))
    assert float(row["train_loss"]) > 0
    saved = checkpoint.load(tmp_path / "tc" / "best.pt")["config"]
    assert saved["consistency_weight"] == 1.0 and saved["consistency_jitter"] == 0.05


def test_bad_consistency_keys_are_refused():
    with pytest.raises(ValueError, match="consistency_zoom"):
        dataclasses.replace(TINY, consistency_weight=1.0, consistency_zoom=0.0)
    with pytest.raises(ValueError, match="consistency_weight"):
        dataclasses.replace(TINY, consistency_weight=-1.0)


def test_an_eval_only_checkpoint_is_refused_as_a_start(tiny_camvid, tmp_path):
    fit(TINY, tiny_camvid, tmp_path / "a")
    ckpt = checkpoint.load(tmp_path / "a" / "best.pt")
    checkpoint.save(tmp_path / "folded.pt", {**ckpt, "eval_only": "BatchNorm folded"})
    with pytest.raises(ConfigError, match="init_from.*eval-only.*distill_from"):
        fit(dataclasses.replace(TINY, init_from=str(tmp_path / "folded.pt")), tiny_camvid, tmp_path / "b")


def test_the_moved_view_lines_up_with_the_prediction_moved_at_the_students_resolution():
    """A pointwise network answers a moved picture with its answer moved: through the
    teacher-resolution warp and the shrink to the student's size, the pull is near zero; the
    same picture not moved is far from the moved answer."""
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 5, 1)
    with torch.no_grad():
        net.weight.mul_(8)
    x = F.interpolate(torch.randn(2, 3, 6, 8), size=(48, 64), mode="bilinear", align_corners=False)
    cons = Consistency(1.0, zoom=0.3)
    with torch.no_grad():
        logits = net(distill.shrink(x, (24, 32)))
        moved = cons.moved_view_loss(net, x, logits, (24, 32)).item()
        theta = cons.motion(2, torch.device("cpu"))
        still = cons.loss(logits, logits, theta).item()
    assert moved < 0.1 * still and still > 0.05, (moved, still)


def test_jitter_changes_the_moved_view_as_the_next_frame_of_a_video_would_and_nothing_without_it():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 40, 48) * 2 - 1
    assert Consistency(1.0, 0.1).perturb(x) is x
    j = 0.1
    y = Consistency(1.0, 0.1, jitter=j).perturb(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    # per frame, a least-squares line through (x, y) recovers a gain within 1 ± j and an
    # offset within ± j (the noise is independent of x, so it only blurs the fit)
    xc, yc = x.flatten(1), y.flatten(1)
    gain = ((xc - xc.mean(1, keepdim=True)) * (yc - yc.mean(1, keepdim=True))).mean(1) / xc.var(1, unbiased=False)
    offset = yc.mean(1) - gain * xc.mean(1)
    assert (gain - 1).abs().max() <= j + 0.01 and (gain - 1).abs().max() > j / 2
    assert offset.abs().max() <= j + 0.03 and offset.abs().max() > j / 2  # (the block noise's mean blurs it)
    residual = yc - gain[:, None] * xc - offset[:, None]
    assert residual.std().item() == pytest.approx(j / 2, rel=0.1)
    # half the noise is shared by each 8x8 block: neighbours inside a block correlate
    r = residual.view(64, 3, 40, 48)
    inside = (r[..., 0::8] * r[..., 1::8]).mean() / r.var()
    assert 0.35 < inside.item() < 0.65
    odd = torch.zeros(2, 3, 37, 45)  # sizes that are not multiples of 8 keep their shape
    assert Consistency(1.0, 0.1, jitter=j).perturb(odd).shape == odd.shape


def test_jitter_without_the_consistency_loss_is_refused():
    with pytest.raises(ValueError, match="consistency_jitter.*consistency_weight"):
        dataclasses.replace(TINY, consistency_jitter=0.05)
    with pytest.raises(ValueError, match="consistency_jitter"):
        dataclasses.replace(TINY, consistency_weight=1.0, consistency_jitter=-0.1)
    assert dataclasses.replace(TINY, consistency_weight=1.0, consistency_jitter=0.05).consistency_jitter == 0.05


def test_the_student_sees_the_moved_view_jittered_and_its_targets_are_the_clean_ones():
    seen = []

    def net(t):
        seen.append(t)
        return t[:, :2] * 0

    class Teacher:  # records what the moved teacher target is compared with
        def divergence(self, logits, target):
            seen.append(target)
            return logits.sum() * 0

    x = torch.rand(2, 3, 32, 32)
    logits = torch.zeros(2, 2, 32, 32)
    target = torch.rand(2, 2, 32, 32)
    for jitter in (0.0, 0.2):
        torch.manual_seed(1)
        Consistency(1.0, 0.1, jitter=jitter).moved_view_loss(net, x, logits, None, Teacher(), target)
    torch.manual_seed(1)
    theta = Consistency(1.0, 0.1).motion(2, x.device)
    assert torch.allclose(seen[0], warp(x, theta))  # no jitter: the moved picture itself
    assert (seen[2] - warp(x, theta)).abs().mean() > 0.02  # jitter: the student's picture changes...
    assert torch.allclose(seen[3], warp(target, theta)) and torch.allclose(seen[1], seen[3])  # ...its target does not

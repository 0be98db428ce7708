import csv
import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segrt.errors import ConfigError  # noqa: E402
from segrt.train import checkpoint  # noqa: E402
from segrt.train.config import TrainConfig  # noqa: E402
from segrt.train.distill import Distillation  # noqa: E402
from segrt.train.trainer import fit  # noqa: E402

TINY = TrainConfig(model="fastscnn", input_width=128, input_height=96, epochs=1, batch_size=4,
                   warmup_epochs=0, eval_every=1, threads=2)


def test_the_distillation_loss_pulls_the_student_to_the_teachers_classes():
    torch.manual_seed(0)
    teacher_logits = torch.randn(2, 5, 6, 7) * 3

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return teacher_logits

    kd = Distillation(Fixed(), weight=1.0, temperature=2.0)
    x = torch.zeros(2, 3, 6, 7)
    assert kd.loss(teacher_logits.clone(), x).item() == pytest.approx(0.0, abs=1e-5)
    student = torch.zeros_like(teacher_logits, requires_grad=True)
    opt = torch.optim.Adam([student], lr=0.1)
    first = kd.loss(student, x).item()
    for _ in range(300):
        opt.zero_grad()
        kd.loss(student, x).backward()
        opt.step()
    assert first > 0.1 and kd.loss(student, x).item() < 0.01 * first
    assert (student.argmax(1) == teacher_logits.argmax(1)).float().mean() > 0.99


def test_a_teacher_adds_its_term_to_the_training_loss(tiny_camvid, tmp_path):
    fit(TINY, tiny_camvid, tmp_path / "teacher")
    plain = fit(TINY, tiny_camvid, tmp_path / "plain")
    kd_cfg = dataclasses.replace(TINY, distill_from=str(tmp_path / "teacher" / "best.pt"), distill_weight=20.0,
                                 distill_temperature=2.0)
    fit(kd_cfg, tiny_camvid, tmp_path / "kd")
    loss = {name: float(next(csv.DictReader(open(tmp_path / name / "metrics.csv")))["train_loss"])
            for name in ("plain", "kd")}
    assert loss["kd"] > loss["plain"] + 0.5, loss
    assert plain is not None and checkpoint.load(tmp_path / "kd" / "best.pt")["config"]["distill_weight"] == 20.0


def test_a_teacher_normalised_otherwise_sees_the_same_picture(tiny_camvid, tmp_path):
    from segrt.preprocess import Preprocess, Preprocessor
    from segrt.train.distill import load_teacher

    fit(TINY, tiny_camvid, tmp_path / "teacher")
    ckpt = checkpoint.load(tmp_path / "teacher" / "best.pt")
    lite0 = {"mean": [127 / 255] * 3, "std": [128 / 255] * 3}  # EfficientNet-Lite0's (x - 127) / 128
    checkpoint.save(tmp_path / "lite0.pt", {**ckpt, "preprocess": {**ckpt["preprocess"], **lite0}})
    student = Preprocess(128, 96)  # ImageNet mean and std
    kd = load_teacher(tmp_path / "lite0.pt", ckpt["classes"], student, torch.device("cpu"), torch.contiguous_format)
    image = (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)
    x_student = torch.from_numpy(Preprocessor(student)(image)[None].copy())
    teacher_spec = Preprocess(128, 96, tuple(lite0["mean"]), tuple(lite0["std"]))
    x_teacher = torch.from_numpy(Preprocessor(teacher_spec)(image)[None].copy())
    with torch.no_grad():
        expected = kd.teacher(x_teacher).softmax(1)
    assert torch.allclose(kd.soft_targets(x_student), expected, atol=1e-5)
    scale, shift = kd.renormalise
    assert torch.allclose(x_student * scale + shift, x_teacher, atol=1e-5)
    assert (x_student - x_teacher).abs().max() > 0.1  # the two normalisations do differ


def test_a_teacher_of_other_classes_or_a_weight_without_teacher_is_refused(tiny_camvid, tmp_path):
    fit(TINY, tiny_camvid, tmp_path / "teacher")
    ckpt = checkpoint.load(tmp_path / "teacher" / "best.pt")
    checkpoint.save(tmp_path / "other.pt", {**ckpt, "classes": ckpt["classes"][:-1] + ["Something"]})
    with pytest.raises(ConfigError, match="distill_from.*classes"):
        fit(dataclasses.replace(TINY, distill_from=str(tmp_path / "other.pt"), distill_weight=1.0),
            tiny_camvid, tmp_path / "kd")
    assert not (tmp_path / "kd" / "best.pt").exists()
    with pytest.raises(ValueError, match="distill_from"):
        dataclasses.replace(TINY, distill_weight=1.0)


def test_a_flip_averaging_teacher_targets_the_mean_of_the_frame_and_its_mirror():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)  # not mirror-symmetric: the two views differ
    x = torch.randn(1, 3, 8, 10)
    plain = Distillation(conv, weight=1.0, temperature=1.0)
    flipped = Distillation(conv, weight=1.0, temperature=1.0, flip=True)
    mirror = plain.soft_targets(x.flip(-1)).flip(-1)
    assert (plain.soft_targets(x) - mirror).abs().max() > 1e-3
    assert torch.allclose(flipped.soft_targets(x), 0.5 * (plain.soft_targets(x) + mirror), atol=1e-6)


def test_a_multi_scale_teacher_targets_the_mean_over_its_scales_resized_back():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 5, padding=2)  # its answer depends on the scale it sees
    x = torch.randn(2, 3, 64, 128)
    size = (64, 128)
    one = Distillation(conv, weight=1.0, temperature=2.0, flip=True)
    multi = Distillation(conv, weight=1.0, temperature=2.0, flip=True, scales=(0.5, 1.0, 1.5))
    want = torch.zeros(2, 4, *size)
    for h, w in ((32, 64), (64, 128), (96, 192)):  # each side times each scale
        xs = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        want += torch.nn.functional.interpolate(one.soft_targets(xs), size=size, mode="bilinear",
                                                align_corners=False)
    got = multi.soft_targets(x)
    assert got.shape == (2, 4, *size) and torch.allclose(got, want / 3, atol=1e-6)
    assert (got - one.soft_targets(x)).abs().max() > 1e-3  # the scales change the target
    assert torch.allclose(got.sum(1), torch.ones(2, *size), atol=1e-5)
    with pytest.raises(ValueError, match="distill_scales"):
        dataclasses.replace(TINY, distill_scales=(0.75, 1.0, 1.25))  # shapes a teacher's target: needs one


def test_a_teacher_at_a_higher_resolution_is_area_averaged_to_the_students_logits():
    teacher_logits = torch.full((1, 2, 1, 4), -10.0)
    teacher_logits[:, 0, :, 0] = 10.0  # class 0 in the first of four columns, class 1 in the others
    teacher_logits[:, 1, :, 1:] = 10.0

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return teacher_logits

    kd = Distillation(Fixed(), weight=1.0, temperature=1.0)
    quarter = torch.tensor([0.25, 0.75]).log().view(1, 2, 1, 1)  # the area mean of the four columns
    assert kd.loss(quarter, torch.zeros(1, 3, 1, 4)).item() < 1e-3
    # bilinear sampling at the centre would see only columns 1 and 2 (class 1) and find a loss here
    nothing_of_class_0 = torch.tensor([1e-4, 1.0]).log().view(1, 2, 1, 1)
    assert kd.loss(nothing_of_class_0, torch.zeros(1, 3, 1, 4)).item() > 1.0


def test_resolution_distillation_cuts_larger_crops_and_trains_the_student_on_them_shrunk(tiny_camvid, tmp_path,
                                                                                         monkeypatch):
    import cv2

    from segrt.datasets import open_dataset
    from segrt.preprocess import Preprocess
    from segrt.train import trainer
    from segrt.train.data import SegTrain

    frames = open_dataset("camvid", tiny_camvid, "train")
    # crops cut from the frame scaled to 1.5x the network's width (480 -> 192 px), 1.5x as large
    wide = SegTrain(frames, Preprocess(128, 96), (1.0, 1.0), 0, (128, 64), oversample=1.5)
    _, y = wide[0]
    assert wide.crop == (192, 96) and y.shape == (96, 192)
    _, label = frames.read(0)
    scaled = cv2.resize(label, (192, 144), interpolation=cv2.INTER_NEAREST)
    match = max((y.numpy() == view[top:top + 96]).mean() for view in (scaled, scaled[:, ::-1]) for top in range(49))
    assert match > 0.97

    fit(TINY, tiny_camvid, tmp_path / "teacher")
    seen = []
    real_shrink = trainer.shrink
    monkeypatch.setattr(trainer, "shrink", lambda x, size: seen.append((tuple(x.shape[-2:]), size))
                        or real_shrink(x, size))
    cfg = dataclasses.replace(TINY, crop_width=64, crop_height=64, distill_from=str(tmp_path / "teacher" / "best.pt"),
                              distill_weight=1.0, distill_resolution=1.5, distill_flip=True)
    fit(cfg, tiny_camvid, tmp_path / "rkd")
    assert seen and all(s == ((96, 96), (64, 64)) for s in seen)  # the teacher's 96x96, the student's 64x64
    saved = checkpoint.load(tmp_path / "rkd" / "best.pt")
    assert saved["config"]["distill_resolution"] == 1.5 and saved["preprocess"]["width"] == 128
    with pytest.raises(ValueError, match="distill_resolution"):
        dataclasses.replace(TINY, distill_resolution=1.5)  # no teacher
    with pytest.raises(ValueError, match="distill_resolution"):
        dataclasses.replace(TINY, distill_from="t.pt", distill_weight=1.0, distill_resolution=0.5)
    with pytest.raises(ValueError, match="multiple of 32.*use e.g."):  # 64 x 1.7 = 109 px: 96 or 128 would skew it
        dataclasses.replace(TINY, crop_width=64, crop_height=64, distill_from="t.pt", distill_weight=1.0,
                            distill_resolution=1.7)

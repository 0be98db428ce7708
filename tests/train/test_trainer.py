import csv
import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segrt.datasets import open_dataset  # noqa: E402
from segrt.train import checkpoint  # noqa: E402
from segrt.train.augment import random_scale_crop  # noqa: E402
from segrt.train.config import TrainConfig  # noqa: E402
from segrt.train.trainer import fit  # noqa: E402

TINY = TrainConfig(model="fastscnn", input_width=128, input_height=96, epochs=2, batch_size=4,
                   warmup_epochs=1, eval_every=1, threads=2)


def test_fit_writes_checkpoints_metrics_and_plots(tiny_camvid, tmp_path):
    import cv2

    best = fit(dataclasses.replace(TINY, epochs=1, loss="ce+dice", class_weighting="median_frequency",
                                   schedule="cosine"), tiny_camvid, tmp_path)
    assert 0.0 <= best["miou"] <= 1.0 and best["epoch"] == 1
    ckpt = checkpoint.load(tmp_path / "best.pt")
    assert ckpt["classes"][3] == "Road" and ckpt["preprocess"]["width"] == 128
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(rows) == 1 and float(rows[0]["val_miou"]) == pytest.approx(best["miou"], abs=1e-4)
    for name in ("curves.png", "confusion.png", "predictions.png"):
        img = cv2.imread(str(tmp_path / name))
        assert img is not None and img.shape[0] > 100, name
    grid = cv2.imread(str(tmp_path / "predictions.png"))
    assert grid.shape[1] == 3 * 320  # frame | truth | prediction


def test_impossible_device_requests_are_refused():
    from segrt.errors import SegrtError
    from segrt.train.trainer import resolve_device

    assert resolve_device(dataclasses.replace(TINY, device="cpu"))[0].type == "cpu"
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SegrtError, match="no CUDA GPU"):
        resolve_device(dataclasses.replace(TINY, device="cuda"))
    with pytest.raises(SegrtError, match="needs a CUDA device"):
        resolve_device(dataclasses.replace(TINY, amp="bf16"))
    assert resolve_device(TINY) == (torch.device("cpu"), None)  # auto: FP32 on CPU


def test_model_args_reach_the_model_and_the_checkpoint(tiny_camvid, tmp_path):
    cfg = dataclasses.replace(TINY, model="deeplabv3plus", model_args={"encoder": "resnet18"}, epochs=1)
    fit(cfg, tiny_camvid, tmp_path, stop_after=1)
    ckpt = checkpoint.load(tmp_path / "last.pt")
    assert ckpt["model_args"] == {"encoder": "resnet18"}
    net = checkpoint.build_from_checkpoint(ckpt)
    assert type(net.encoder).__name__ == "ResNet"


def test_resume_continues_exactly(tiny_camvid, tmp_path):
    """Stopped after epoch 1 of 2 and resumed, a run ends bit-identical to a straight run."""
    fit(TINY, tiny_camvid, tmp_path / "straight")
    fit(TINY, tiny_camvid, tmp_path / "split", stop_after=1)
    assert checkpoint.load(tmp_path / "split" / "last.pt")["epoch"] == 1
    fit(TINY, tiny_camvid, tmp_path / "split", resume=tmp_path / "split" / "last.pt")
    straight = checkpoint.load(tmp_path / "straight" / "last.pt")["state_dict"]
    resumed = checkpoint.load(tmp_path / "split" / "last.pt")["state_dict"]
    for k in straight:
        torch.testing.assert_close(resumed[k], straight[k], rtol=0, atol=0)
    rows = list(csv.DictReader(open(tmp_path / "split" / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]


def test_scale_crop_keeps_image_and_label_aligned():
    rng = np.random.default_rng(0)
    label = np.zeros((360, 480), np.uint8)
    label[:, 240:] = 5
    image = np.repeat((label * 40)[..., None], 3, axis=2)
    for _ in range(10):
        img, lab = random_scale_crop(image, label, 128, 96, 0.8, (0.5, 1.5), 11, rng)
        assert img.shape == (96, 128, 3) and lab.shape == (96, 128)
        valid = lab != 11
        mismatch = img[..., 0][valid] != lab[valid] * 40
        assert mismatch.mean() < 0.03  # only the bilinear seam at the class boundary differs


def test_colour_cast_tints_grey_frames_and_is_off_unless_asked():
    """colour_cast: a grey sky comes out blue in some crops and warm in others; at 0 (every
    recipe before it) the training crops are what they were, random stream included."""
    from segrt.preprocess import Preprocess
    from segrt.train.data import SegTrain

    class Grey:  # a one-frame dataset: flat grey, all Sky
        split, ignore_index = "train", 11

        def __len__(self):
            return 1

        def read(self, i):
            return np.full((96, 128, 3), 180, np.uint8), np.zeros((96, 128), np.uint8)

        def read_label(self, i):
            return self.read(i)[1]

    spec = Preprocess(width=128, height=96, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    tinted = SegTrain(Grey(), spec, (1.0, 1.0), seed=0, colour_cast=0.3)
    blue_minus_red = [float(x[2].mean() - x[0].mean()) for x, _ in (tinted[0] for _ in range(40))]
    assert max(blue_minus_red) > 0.1 and min(blue_minus_red) < -0.1  # 0.1 of the 0-1 range: 25 levels
    plain, reference = (SegTrain(Grey(), spec, (1.0, 1.0), seed=0, colour_cast=c) for c in (0.0, 0.0))
    for _ in range(5):
        x, _ = plain[0]
        assert float(x.max() - x.min()) < 1e-6  # grey stays grey: channels scaled alike
        torch.testing.assert_close(x, reference[0][0])
    with pytest.raises(ValueError, match="colour_cast"):
        TrainConfig(model="fastscnn", colour_cast=1.5)


def test_degrade_blurs_darkens_adds_noise_and_compresses_and_is_off_at_zero():
    """Each degradation shows on a sharp edge: at p = 1 the edge softens (blur), the flat side
    is no longer flat (noise) and its mean moves (gamma); at p = 0 nothing changes."""
    from segrt.train.augment import degrade

    edge = np.full((64, 64, 3), 60, np.uint8)
    edge[:, 32:] = 200
    rng = np.random.default_rng(0)
    outs = [degrade(edge, rng, 1.0) for _ in range(20)]
    assert all(o.shape == edge.shape and o.dtype == np.uint8 for o in outs)
    # blur carries the bright side across the edge in some frames: the column beside it is no
    # longer the dark side's level (the edge falls between two 8x8 JPEG blocks: no ringing across)
    def spill(o):
        o = o.astype(np.float32)
        return float((o[:, 31] - o[:, 24]).mean() / (o[:, 40] - o[:, 24]).mean())

    assert max(spill(o) for o in outs) > 0.15
    assert sum(float(o[:, :24].std()) > 1 for o in outs) >= 10  # sensor noise on the flat side
    means = [float(o[:, 40:].mean()) for o in outs]
    assert max(means) - min(means) > 20  # exposure varies
    same = [degrade(edge, np.random.default_rng(i), 0.0) for i in range(5)]
    assert all(np.array_equal(o, edge) for o in same)
    with pytest.raises(ValueError, match="degrade"):
        TrainConfig(model="fastscnn", degrade=1.5)


def test_haze_greys_the_sky_fades_the_top_and_leaves_the_road():
    """haze: the sky (by its label) becomes a near-flat grey of random brightness, the top of the
    frame fades towards it, the lower 40 % is untouched; at p = 0 nothing changes."""
    from segrt.train.augment import haze

    rng = np.random.default_rng(0)
    scene = rng.integers(0, 256, (100, 80, 3)).astype(np.uint8)  # texture everywhere
    label = np.full((100, 80), 1, np.uint8)
    label[:30] = 0  # Sky above, Building below
    outs = [haze(scene, label, rng, 1.0, sky=0) for _ in range(30)]
    assert all(o.shape == scene.shape and o.dtype == np.uint8 for o in outs)
    for o in outs:
        assert float(o[:30].std()) < 0.5 * float(scene[:30].std())  # the sky's texture mostly gone
        assert np.array_equal(o[60:], scene[60:])  # the road half as it was
    greys = [float(o[:30].mean()) for o in outs]
    assert max(greys) - min(greys) > 60  # bright and dark overcast skies
    near_top = [float(np.abs(o[30:40].astype(int) - scene[30:40]).mean()) for o in outs]
    assert max(near_top) > 5  # the building below the sky is faded in some frames
    assert all(np.array_equal(haze(scene, label, np.random.default_rng(i), 0.0, sky=0), scene) for i in range(5))
    no_sky = haze(scene, label, np.random.default_rng(1), 1.0, sky=None)
    assert float(no_sky[:30].std()) > 0.5 * float(scene[:30].std())  # no Sky class: only the fade
    with pytest.raises(ValueError, match="haze"):
        TrainConfig(model="fastscnn", haze=1.5)


def test_training_crops_find_the_sky_by_name_whatever_its_case_and_repaint_it():
    from segrt.preprocess import Preprocess
    from segrt.train.data import SegTrain

    class Street:  # one frame: textured sky above a textured road; classes named as Cityscapes does
        split, ignore_index, classes = "train", 255, ("road", "sky")

        def __len__(self):
            return 1

        def read(self, i):
            image = np.random.default_rng(0).integers(0, 256, (96, 128, 3)).astype(np.uint8)
            label = np.zeros((96, 128), np.uint8)
            label[:40] = 1
            return image, label

    spec = Preprocess(width=128, height=96, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    hazy = SegTrain(Street(), spec, (1.0, 1.0), seed=0, haze=1.0)
    assert hazy.sky == 1
    x, y = hazy[0]
    sky = x[:, y == 1]
    assert float(sky.std()) < 0.5 * float(x[:, y == 0].std())  # the sky repainted flat, the road not


def test_train_plus_val_reads_both_splits(tiny_camvid):
    from segrt.datasets import Concat

    train, val = open_dataset("camvid", tiny_camvid, "train"), open_dataset("camvid", tiny_camvid, "val")
    both = Concat(train, val)
    assert len(both) == len(train) + len(val) and both.split == "train+val"
    np.testing.assert_array_equal(both.read_label(len(train)), val.read_label(0))
    np.testing.assert_array_equal(both.read(len(train) - 1)[0], train.read(len(train) - 1)[0])


def test_slim_checkpoint_is_half_size_and_still_builds(tiny_camvid, tmp_path):
    fit(dataclasses.replace(TINY, epochs=1), tiny_camvid, tmp_path)
    slim = checkpoint.slim(tmp_path / "last.pt", tmp_path / "slim.pt")
    assert slim.stat().st_size < 0.3 * (tmp_path / "last.pt").stat().st_size  # no Adam moments
    net = checkpoint.build_from_checkpoint(checkpoint.load(slim))
    full = checkpoint.build_from_checkpoint(checkpoint.load(tmp_path / "last.pt"))
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        agree = (net(x).argmax(1) == full(x).argmax(1)).float().mean()
    assert agree > 0.99


def test_training_killed_mid_epoch_resumes_to_the_uninterrupted_result(tiny_camvid, tmp_path):
    """SIGKILL (no clean-up at all) during epoch 2 of 4, then --resume: same weights and metrics
    as a run that was never interrupted."""
    import signal
    import subprocess
    import sys
    import time

    config = tmp_path / "tiny.yaml"
    config.write_text("model: fastscnn\ninput_width: 256\ninput_height: 192\nepochs: 4\nbatch_size: 2\n"
                      "warmup_epochs: 1\neval_every: 1\nthreads: 2\ndevice: cpu\nseed: 3\n")

    def train(out, *extra):
        return subprocess.Popen([sys.executable, "-m", "segrt", "train", "--config", str(config), "--data-root",
                                 str(tiny_camvid), "--out", str(out), *extra],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    assert train(tmp_path / "straight").wait(timeout=600) == 0
    proc = train(tmp_path / "killed")
    log = tmp_path / "killed" / "metrics.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 2:  # epoch 1 logged: epoch 2 is under way
            time.sleep(0.3)
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = checkpoint.load(tmp_path / "killed" / "last.pt")
    assert 1 <= last["epoch"] < 4, "the kill must land before the end of the run"
    assert train(tmp_path / "killed", "--resume", str(tmp_path / "killed" / "last.pt")).wait(timeout=600) == 0
    straight = checkpoint.load(tmp_path / "straight" / "last.pt")
    resumed = checkpoint.load(tmp_path / "killed" / "last.pt")
    for k in straight["state_dict"]:
        torch.testing.assert_close(resumed["state_dict"][k], straight["state_dict"][k], rtol=0, atol=0)
    assert resumed["best"] == straight["best"]
    rows = list(csv.DictReader(open(tmp_path / "killed" / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    straight_rows = list(csv.DictReader(open(tmp_path / "straight" / "metrics.csv")))
    assert [r["val_miou"] for r in rows] == [r["val_miou"] for r in straight_rows]
    assert not list((tmp_path / "killed").glob("*.tmp"))


@pytest.mark.parametrize("name, args", [("fastscnn", {}), ("fcn8s", {"encoder": "resnet18", "width": 0.25})])
def test_auxiliary_head_trains_resumes_and_stays_out_of_the_model(name, args, tiny_camvid, tmp_path):
    cfg = dataclasses.replace(TINY, model=name, model_args=args, aux_weight=0.4)
    fit(cfg, tiny_camvid, tmp_path / "straight")
    last = checkpoint.load(tmp_path / "straight" / "last.pt")
    assert last["aux_head"] and not any(k.startswith(("head.body", "net.")) for k in last["state_dict"])
    net = checkpoint.build_from_checkpoint(checkpoint.load(tmp_path / "straight" / "best.pt"))  # loads strictly
    assert net(torch.zeros(1, 3, 96, 128)).shape == (1, 11, 96, 128)
    fit(cfg, tiny_camvid, tmp_path / "split", stop_after=1)
    fit(cfg, tiny_camvid, tmp_path / "split", resume=tmp_path / "split" / "last.pt")
    resumed = checkpoint.load(tmp_path / "split" / "last.pt")
    for k, v in last["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][k], v, rtol=0, atol=0)


def test_auxiliary_head_is_refused_where_there_is_no_tap(tiny_camvid, tmp_path):
    from segrt.errors import ConfigError

    with pytest.raises(ConfigError, match="no auxiliary tap"):
        fit(dataclasses.replace(TINY, model="segnet", model_args={"width": 0.125}, aux_weight=0.4),
            tiny_camvid, tmp_path)


def test_aspect_stretches_height_only_and_is_off_unless_asked():
    """aspect_range: a 4-row horizontal band comes out taller in some crops and thinner in others
    while a vertical band keeps its width; at (1, 1) the crops are what they were, random stream
    included; a range outside 0.25-4 is refused."""
    from segrt.preprocess import Preprocess
    from segrt.train.augment import random_aspect
    from segrt.train.data import SegTrain

    label = np.zeros((96, 128), np.uint8)
    label[46:50, :] = 1    # a horizontal band, 4 rows
    label[:, 60:68] = 2    # a vertical band, 8 columns

    class Bands:
        split, ignore_index = "train", 11

        def __len__(self):
            return 1

        def read(self, i):
            return np.repeat((label * 60)[..., None], 3, axis=2), label

    spec = Preprocess(width=128, height=96, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    stretched = SegTrain(Bands(), spec, (1.0, 1.0), seed=0, aspect_range=(0.5, 2.0))
    rows, cols = [], []
    for _ in range(40):
        _, lab = stretched[0]
        lab = lab.numpy()
        rows.append(int((lab[:, 0] == 1).sum()))
        cols.append(int((lab[0] == 2).sum()) if (lab[0] != 11).all() else 8)
    assert max(rows) >= 6 and min(rows) <= 3   # up to 8 and down to 2 rows
    assert set(cols) == {8}                    # widths untouched
    draws = [random_aspect(np.random.default_rng(i), (0.5, 2.0)) for i in range(400)]
    assert 0.5 <= min(draws) and max(draws) <= 2.0
    assert 0.4 < np.mean([d < 1 for d in draws]) < 0.6   # log-uniform: as many squeezes as stretches
    plain, reference = (SegTrain(Bands(), spec, (0.8, 1.2), seed=3) for _ in range(2))
    off = SegTrain(Bands(), spec, (0.8, 1.2), seed=3, aspect_range=(1.0, 1.0))
    for _ in range(3):
        a, b, c = plain[0][1], reference[0][1], off[0][1]
        assert torch.equal(a, b) and torch.equal(a, c)
    with pytest.raises(ValueError, match="aspect_range"):
        TrainConfig(model="fastscnn", aspect_range=(0.1, 2.0))

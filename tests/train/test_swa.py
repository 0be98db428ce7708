import csv
import dataclasses

import pytest

torch = pytest.importorskip("torch")

from segrt.train import checkpoint  # noqa: E402
from segrt.train.swa import WeightAverage  # noqa: E402
from segrt.train.trainer import fit  # noqa: E402

from .test_trainer import TINY  # noqa: E402


def test_average_is_the_mean_of_snapshots_and_batchnorm_is_measured_anew():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    snapshots, swa = [], WeightAverage()
    for _ in range(3):
        for p in net.parameters():
            p.data.normal_()
        snapshots.append(net[0].weight.detach().clone())
        swa.update(net)
    batches = [torch.randn(5, 3) * 3 + 1 for _ in range(4)]
    avg = swa.averaged_model(net, [(x, None) for x in batches], torch.device("cpu"))
    torch.testing.assert_close(avg[0].weight, sum(snapshots) / 3)
    # the running mean is that of every batch the averaged layer saw, not an exponential one
    seen = avg[0](torch.cat(batches)).detach()
    torch.testing.assert_close(avg[1].running_mean, seen.mean(0), rtol=1e-5, atol=1e-5)
    assert not avg.training and avg[1].momentum == net[1].momentum
    torch.testing.assert_close(net[0].weight, snapshots[-1])  # the trained model is left as it was


def test_swa_holds_the_rate_averages_the_last_epochs_and_resumes_exactly(tiny_camvid, tmp_path):
    cfg = dataclasses.replace(TINY, epochs=3, swa_epochs=2, eval_every=1)
    straight = fit(cfg, tiny_camvid, tmp_path / "straight")
    rows = list(csv.DictReader(open(tmp_path / "straight" / "metrics.csv")))
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[1] == lrs[2] > 0  # held from the start of the averaged epochs, not decayed to 0
    state = checkpoint.load(tmp_path / "straight" / "last.pt")
    assert state["swa"]["count"] == 2
    assert straight["miou"] >= max(float(r["val_miou"]) for r in rows)
    fit(cfg, tiny_camvid, tmp_path / "split", stop_after=2)
    fit(cfg, tiny_camvid, tmp_path / "split", resume=tmp_path / "split" / "last.pt")
    resumed = checkpoint.load(tmp_path / "split" / "last.pt")["swa"]
    assert resumed["count"] == 2
    for k, v in state["swa"]["mean"].items():
        torch.testing.assert_close(resumed["mean"][k], v, rtol=0, atol=0)


def test_swa_epochs_beyond_the_run_are_refused():
    with pytest.raises(ValueError, match="swa_epochs"):
        dataclasses.replace(TINY, epochs=3, swa_epochs=4)

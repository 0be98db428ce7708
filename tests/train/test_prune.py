import dataclasses

import pytest

torch = pytest.importorskip("torch")

from segrt.train import checkpoint  # noqa: E402
from segrt.train.models import build_model  # noqa: E402
from segrt.train.prune import narrow_head  # noqa: E402
from segrt.train.trainer import fit  # noqa: E402

from .test_trainer import TINY  # noqa: E402

SMALL_UNET = {"encoder": "efficientnet_lite0", "decoder": (16, 8, 8, 8, 8)}


@pytest.mark.parametrize("model, args", [("unet_resnet34", SMALL_UNET),
                                         ("fcn8s", {"encoder": "efficientnet_lite0", "head": 16})])
def test_narrowing_drops_only_channels_that_carry_nothing(model, args):
    """Head channels silenced in the trained model (ReLU6 of a negative bias) are the ones
    dropped, and the narrowed model computes exactly what the full one did."""
    torch.manual_seed(0)
    full = build_model(model, num_classes=5, **args).eval()
    dead = torch.randperm(1280)[:280]
    head, norm = full.encoder._conv_head, full.encoder._bn1
    with torch.no_grad():  # every other channel made to carry something (random weights barely do)
        norm.weight.fill_(0.05)
        norm.bias.fill_(3.0)
        head.weight[dead] = 0
        norm.bias[dead] = -1.0
        if model == "fcn8s":  # a context vector would revive them: none in this one
            assert isinstance(full.context, torch.nn.Identity)
    narrow = build_model(model, num_classes=5, **args, encoder_head=1000).eval()
    x = torch.rand(2, 3, 64, 96)
    kept = narrow_head(full, narrow, x)
    assert set(kept.tolist()).isdisjoint(dead.tolist()) and len(kept) == 1000
    with torch.no_grad():
        torch.testing.assert_close(narrow(x), full(x), rtol=1e-4, atol=1e-4)
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in full.parameters())


def test_a_wider_head_than_trained_is_refused():
    full = build_model("unet_resnet34", num_classes=5, **SMALL_UNET, encoder_head=64)
    wider = build_model("unet_resnet34", num_classes=5, **SMALL_UNET, encoder_head=128)
    with pytest.raises(ValueError, match="wider than the trained one"):
        narrow_head(full, wider, torch.rand(1, 3, 64, 64))


def test_init_from_a_wider_head_narrows_it_and_other_differences_are_refused(tiny_camvid, tmp_path):
    from segrt.errors import ConfigError

    cfg = dataclasses.replace(TINY, model="unet_resnet34", model_args=SMALL_UNET, epochs=1)
    fit(cfg, tiny_camvid, tmp_path / "full", stop_after=1)
    narrowed = dataclasses.replace(cfg, model_args={**SMALL_UNET, "encoder_head": 320},
                                   init_from=str(tmp_path / "full" / "last.pt"))
    fit(narrowed, tiny_camvid, tmp_path / "narrow", stop_after=1)
    ckpt = checkpoint.load(tmp_path / "narrow" / "last.pt")
    assert ckpt["model_args"]["encoder_head"] == 320
    assert ckpt["state_dict"]["encoder._conv_head.weight"].shape[0] == 320
    assert ckpt["state_dict"]["blocks.0.0.0.weight"].shape[1] == 320 + 112
    other = dataclasses.replace(narrowed, model_args={**SMALL_UNET, "encoder_head": 320, "decoder": (8,) * 5})
    with pytest.raises(ConfigError, match="init_from"):
        fit(other, tiny_camvid, tmp_path / "other", stop_after=1)


def test_an_impossible_head_width_is_a_one_line_error_naming_the_key():
    from segrt.errors import ModelError

    for width in (4000, 0):
        with pytest.raises(ModelError, match="encoder_head.*8 to 1280"):
            build_model("unet_resnet34", num_classes=5, **SMALL_UNET, encoder_head=width)

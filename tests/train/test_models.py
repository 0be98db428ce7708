"""One tester for every architecture: forward, backward, export, parity, TensorRT operators.

Each registered model runs through the same checks; a new architecture only registers a name.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from segrt.datasets.camvid import CLASSES, PALETTE  # noqa: E402
from segrt.errors import ModelError, SegrtError  # noqa: E402
from segrt.preprocess import Preprocess  # noqa: E402
from segrt.train import checkpoint  # noqa: E402
from segrt.train.models import MODELS, build_model  # noqa: E402
from segrt.train.models.encoders.mobilenetv2 import MobileNetV2  # noqa: E402
from segrt.train.models.encoders.resnet import ResNet  # noqa: E402
from segrt.train.models.encoders.vgg import vgg16_bn_features  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engines"))
import tensorrt_ops  # noqa: E402

H, W = 96, 128


@pytest.mark.parametrize("name", MODELS.names())
def test_forward_gives_logits_at_input_size(name):
    net = build_model(name, num_classes=11).eval()
    with torch.no_grad():
        y = net(torch.zeros(2, 3, H, W))
    assert y.shape == (2, 11, H, W)


@pytest.mark.parametrize("name", MODELS.names())
def test_backward_reaches_every_parameter(name):
    net = build_model(name, num_classes=11).train()
    net(torch.randn(2, 3, 64, 64)).mean().backward()
    assert [n for n, p in net.named_parameters() if p.grad is None] == []


@pytest.mark.skipif(importlib.util.find_spec("onnxscript") is None, reason="needs the export extra")
@pytest.mark.parametrize("name", MODELS.names())
def test_exports_with_tensorrt_operators_and_matches_torch_on_val(name, tmp_path, camvid_root):
    import cv2
    import onnx

    from segrt.engines.export import export_onnx, parity

    torch.manual_seed(0)
    net = build_model(name, num_classes=len(CLASSES)).train()
    with torch.no_grad():  # BN statistics of real-looking inputs, so logits are not near-ties
        for _ in range(2):
            net(torch.randn(2, 3, H, W))
    ckpt = tmp_path / f"{name}.pt"
    checkpoint.save(ckpt, {"model": name, "classes": list(CLASSES), "palette": [list(c) for c in PALETTE],
                           "preprocess": Preprocess(W, H).to_dict(), "state_dict": net.state_dict()})
    out = tmp_path / f"{name}.onnx"
    frames = [cv2.imread(str(p)) for p in sorted((camvid_root / "val").glob("*.png"))[::25]]
    manifest = export_onnx(ckpt, out, check_frames=frames)  # refuses below 99.5% agreement
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    assert tensorrt_ops.problems(model) == []
    assert manifest.provenance["parity"]["agreement"] >= 0.995
    # the manifest records the agreement rounded to 6 decimals: equal up to that rounding
    assert parity(net, out, manifest, frames) == pytest.approx(manifest.provenance["parity"]["agreement"],
                                                               abs=5e-7 + 1e-12)


def test_tensorrt_check_catches_maxpool_indices_and_maxunpool():
    import onnx
    from onnx import helper

    nodes = [helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("MaxUnpool", ["y", "i"], ["z"], kernel_shape=[2, 2], strides=[2, 2])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [1, 1, 4, 4])])
    found = tensorrt_ops.problems(helper.make_model(graph))
    assert len(found) == 2 and "Indices" in found[0] and "MaxUnpool" in found[1]


def test_segnet_switch_unpooling_equals_pytorch_index_unpooling():
    from segrt.train.models.segnet import pool_with_switch, unpool_with_switch

    x = torch.randn(2, 3, 8, 12)
    x[0, 0, :2, :2] = 1.0  # a tie inside one window: the first maximum must win, as with indices
    pooled, switch = pool_with_switch(x)
    ref_pooled, idx = torch.nn.functional.max_pool2d(x, 2, 2, return_indices=True)
    torch.testing.assert_close(pooled, ref_pooled)
    y = torch.randn_like(pooled)
    torch.testing.assert_close(unpool_with_switch(y, switch),
                               torch.nn.functional.max_unpool2d(y, idx, 2, 2, output_size=x.shape[-2:]))


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(SegrtError, match="valid models: deeplabv3plus, fastscnn, fcn8s, fpn, segnet"):
        build_model("segformer", num_classes=11)


def torchvision_like(module: torch.nn.Module, extra: dict, path: Path) -> dict:
    """A state_dict file as torchvision publishes it: backbone weights plus a classifier."""
    torch.manual_seed(1)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in module.state_dict().items()}
    torch.save({**state, **extra}, path)
    return state


@pytest.mark.parametrize("model, make, extra", [
    ("fcn8s", lambda: ResNet("resnet34"), {"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}),
    ("deeplabv3plus", lambda: MobileNetV2(output_stride=16),
     {"features.18.0.weight": torch.zeros(1280, 320, 1, 1), "classifier.1.weight": torch.zeros(1000, 1280)}),
])
def test_imagenet_weights_load_from_a_torchvision_layout_file(tmp_path, model, make, extra):
    path = tmp_path / "imagenet.pth"
    state = torchvision_like(make(), extra, path)  # extra: the classifier keys a real file has
    net = build_model(model, num_classes=11, pretrained=str(path))
    loaded = net.encoder.state_dict()
    for k, v in state.items():
        torch.testing.assert_close(loaded[k], v)


def test_segnet_loads_vgg16_bn_features(tmp_path):
    holder = torch.nn.Module()
    holder.features = vgg16_bn_features()
    path = tmp_path / "vgg16_bn.pth"
    state = torchvision_like(holder, {"classifier.0.weight": torch.zeros(4096, 25088)}, path)
    net = build_model("segnet", num_classes=11, pretrained=str(path))
    torch.testing.assert_close(net.encoder.features[0].weight, state["features.0.weight"])


def test_wrong_weights_file_names_the_mismatch(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(ResNet("resnet18").state_dict(), path)
    with pytest.raises(ModelError, match=r"missing \(e\.g\. layer1\.2"):
        build_model("unet_resnet34", num_classes=11, pretrained=str(path))


@pytest.mark.parametrize("stem", ["patch4", "patch2conv3"])
def test_int8_friendly_stems_give_the_same_feature_strides_past_the_stem(stem):
    x = torch.zeros(1, 3, H, W)
    conv7 = [f.shape[-1] for f in ResNet("resnet18", width=0.25)(x)]
    other = [f.shape[-1] for f in ResNet("resnet18", width=0.25, stem=stem)(x)]
    assert conv7 == [W // 2, W // 4, W // 8, W // 16, W // 32]
    assert other == [W // 4, *conv7[1:]]
    net = build_model("fcn8s", num_classes=11, encoder="resnet18", width=0.25, stem=stem, context=True).eval()
    assert net(x).shape == (1, 11, H, W)


def test_unknown_stem_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: conv7, patch4, patch2conv3"):
        ResNet("resnet18", stem="patch8")


def test_global_context_makes_every_position_see_the_whole_image():
    from segrt.train.models.layers import GlobalContext

    torch.manual_seed(0)
    gc = GlobalContext(8).train()
    gc(torch.randn(4, 8, 6, 6))  # BN statistics, then eval
    gc.eval()
    x = torch.randn(1, 8, 6, 6)
    y = x.clone()
    y[..., 0, 0] += 5.0  # change one position only
    with torch.no_grad():
        moved = (gc(x) - gc(y)).abs().amax(dim=1)[0]
    assert (moved[1:, 1:] > 0).all()  # every other position changed: only the mean can do that
    assert isinstance(build_model("fcn8s", num_classes=11, context=True).context, GlobalContext)

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from segrt.app.cli import main  # noqa: E402
from segrt.datasets.camvid import CLASSES, PALETTE  # noqa: E402
from segrt.engines.base import open_backend  # noqa: E402
from segrt.engines.export import export_onnx, parity  # noqa: E402
from segrt.files import sha256_file  # noqa: E402
from segrt.preprocess import Preprocess  # noqa: E402
from segrt.train import checkpoint  # noqa: E402
from segrt.train.models import build_model  # noqa: E402


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory):
    torch.manual_seed(0)
    net = build_model("fastscnn", num_classes=len(CLASSES))
    # Non-trivial BN statistics, so the export is checked on a network that is not near-constant.
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, 3, 96, 128))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    checkpoint.save(path, {"model": "fastscnn", "classes": list(CLASSES),
                           "palette": [list(c) for c in PALETTE],
                           "preprocess": Preprocess(128, 96).to_dict(),
                           "state_dict": net.state_dict(), "epoch": 0, "metrics": {}})
    return path


def test_export_puts_argmax_in_the_graph_and_writes_the_manifest(ckpt_path, tmp_path):
    out = tmp_path / "m.onnx"
    manifest = export_onnx(ckpt_path, out)
    graph = onnx.load(str(out)).graph
    assert graph.node[-1].op_type == "Cast" and "ArgMax" in [n.op_type for n in graph.node]
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["classes"] == list(CLASSES) and doc["precision"] == "fp32"
    assert doc["preprocess"]["width"] == 128 and doc["opset"] == manifest.opset
    assert doc["source_checkpoint_sha256"] == sha256_file(ckpt_path)
    with open_backend(out) as net:  # the manifest's model hash matches the file
        assert net.infer(net.input_buffer(1)).shape == (1, 96, 128)


def test_onnx_runtime_agrees_with_torch(ckpt_path, tmp_path, camvid_root):
    import cv2

    out = tmp_path / "m.onnx"
    manifest = export_onnx(ckpt_path, out)
    frames = [cv2.imread(str(p)) for p in sorted((camvid_root / "val").glob("*.png"))[:4]]
    net = checkpoint.build_from_checkpoint(checkpoint.load(ckpt_path))
    assert parity(net, out, manifest, frames) > 0.999


def test_default_export_is_fixed_size_and_dynamic_frees_batch_and_spatial_axes(ckpt_path, tmp_path):
    def dims(path):
        return [d.dim_param or d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]

    export_onnx(ckpt_path, tmp_path / "fixed.onnx")
    assert dims(tmp_path / "fixed.onnx") == [1, 3, 96, 128]
    export_onnx(ckpt_path, tmp_path / "dyn.onnx", dynamic=True)
    n, c, h, w = dims(tmp_path / "dyn.onnx")
    assert c == 3 and all(isinstance(d, str) for d in (n, h, w))
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "dyn.onnx"), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"image": np.zeros((2, 3, 64, 160), np.float32)})[0].shape == (2, 64, 160)


def test_export_refuses_a_graph_that_disagrees_with_torch(ckpt_path, tmp_path, camvid_root):
    import cv2

    from segrt.errors import ModelError

    frames = [cv2.imread(str(p)) for p in sorted((camvid_root / "val").glob("*.png"))[:2]]
    out = tmp_path / "m.onnx"
    with pytest.raises(ModelError, match="agree on only"):  # no graph can beat 100.1 %
        export_onnx(ckpt_path, out, check_frames=frames, min_agreement=1.001)
    assert list(tmp_path.iterdir()) == []


def test_export_cli_reports_parity(ckpt_path, tmp_path, camvid_root, capsys):
    main(["export", str(ckpt_path), "-o", str(tmp_path / "c.onnx"), "--data-root", str(camvid_root)])
    out = capsys.readouterr().out
    assert "wrote" in out and "parity: ONNX Runtime and torch agree on" in out


def test_export_of_a_non_checkpoint_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(bad), "-o", str(tmp_path / "x.onnx"), "--no-check"])
    assert exit_info.value.code == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_missing_check_data_fails_before_anything_is_written(ckpt_path, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(ckpt_path), "-o", str(tmp_path / "m.onnx"), "--data-root", str(tmp_path / "none")])
    assert exit_info.value.code == 2
    assert "--no-check" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_fp16_storage_halves_the_file_and_quantizers_get_float32_back(ckpt_path, tmp_path):
    import onnxruntime as ort

    from segrt.engines.export import fold_fp16_storage

    full, half = tmp_path / "full.onnx", tmp_path / "half.onnx"
    export_onnx(ckpt_path, full)
    manifest = export_onnx(ckpt_path, half, fp16_storage=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert manifest.provenance["weights_stored_as"].startswith("fp16")
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 128)).astype(np.float32)

    def labels(model_bytes):
        return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]

    assert (labels(str(half)) == labels(str(full))).mean() > 0.99
    folded = fold_fp16_storage(onnx.load(str(half)))
    assert not any(i.data_type == onnx.TensorProto.FLOAT16 for i in folded.graph.initializer)
    assert not any(n.name.startswith("storage_cast_") for n in folded.graph.node)
    assert (labels(folded.SerializeToString()) == labels(str(half))).all()


def test_flip_tta_in_the_graph_is_the_mean_of_the_frame_and_its_mirror(tmp_path, camvid_root):
    """--tta flip: ONNX Runtime's labels are the argmax of the averaged probabilities of the frame
    and of its mirror image, which differs from the plain network's on some pixels."""
    import cv2

    from segrt.engines.zoo import resolve_model
    from segrt.preprocess import Preprocessor
    from segrt.train.models.tta import FlipAverage

    ckpt_path = resolve_model("fastscnn_camvid", prefer=(".pt",))  # a trained model: its labels vary

    out = tmp_path / "tta.onnx"
    manifest = export_onnx(ckpt_path, out, tta="flip")
    assert json.loads(out.with_suffix(".json").read_text())["provenance"]["tta"] == "flip"
    net = checkpoint.build_from_checkpoint(checkpoint.load(ckpt_path))
    frame = cv2.imread(str(sorted((camvid_root / "val").glob("*.png"))[0]))
    x = Preprocessor(manifest.preprocess)(frame)[None]
    with torch.no_grad():
        plain = net(torch.from_numpy(x)).argmax(1).numpy()
        left, right = net(torch.from_numpy(x)).softmax(1), net(torch.from_numpy(x[..., ::-1].copy())).softmax(1)
        expected = ((left + right.flip(3)) / 2).argmax(1).numpy()
        # (the same probabilities, up to rounding: a near-tie pixel may go either way)
        assert (FlipAverage(net)(torch.from_numpy(x)).argmax(1).numpy() == expected).mean() > 0.9999
    with open_backend(out) as backend:
        ours = backend.infer(x)
    assert (ours == expected).mean() > 0.999 and (ours != plain).any()
    # softmax over the class axis as element-wise ops: ONNX Runtime's CPU Softmax on a non-last
    # axis transposes every pixel out and back and took half the GPU default's CPU time
    import onnx

    assert "Softmax" not in {n.op_type for n in onnx.load(str(out)).graph.node}
    with pytest.raises(Exception, match="unknown; valid: flip"):
        export_onnx(ckpt_path, tmp_path / "x.onnx", tta="multiscale")


def test_channel_softmax_is_softmax_over_classes_even_for_large_logits():
    from segrt.train.models.tta import channel_softmax

    logits = torch.randn(2, 11, 5, 7, generator=torch.Generator().manual_seed(0)) * 30
    logits[0, 3] += 500  # exp(500) overflows unless the maximum is taken out first
    got = channel_softmax(logits)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, logits.softmax(1), atol=1e-6)


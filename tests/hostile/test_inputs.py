"""Hostile inputs, run as a user runs them: each case is a ``python -m segrt`` subprocess, so
whatever OpenCV, FFmpeg or ONNX Runtime print to stderr is seen too.

Every refused case must end with exit code 2, exactly one line on stderr that starts with
``error:`` (no traceback), every file in the case's folder byte-identical afterwards, and no
file or folder added or removed (no output, no temporary, no empty folder). The cases that
must work (odd but valid names, special files, two writers) are checked for what they wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from segrt.engines.zoo import zoo_dir
from tests.hostile.kit import (
    ALIAS_BOMB,
    TRAIN,
    checkpoint_copy,
    earlier_run,
    edit_manifest,
    model_copy,
    png_header_claiming,
    segrt,
    sha,
    snapshot,
    yaml_file,
    zero_frames,
)

CASES = {
    # outputs that are inputs (issue examples first)
    "report_is_the_input_video": lambda t, c, d: (["run", c, "--report", c], "is the input SOURCE"),
    "frames_csv_is_the_input_video": lambda t, c, d: (["run", c, "--frames-csv", c], "is the input SOURCE"),
    "output_is_the_input_video": lambda t, c, d: (["run", c, "-o", c], "is the input SOURCE"),
    "output_is_the_input_named_with_its_kind": lambda t, c, d: (["run", f"file:{c}", "-o", c], "is the input SOURCE"),
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
        ["export", str(checkpoint_copy(t)), "-o", str(t / "m.pt")], "must end in .onnx"),
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
        ["train", "--config", yaml_file(t, TRAIN), "--data-root", d, "--out", str(earlier_run(t / "run"))],
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
    "opset_absurd": lambda t, c, d: (["export", str(checkpoint_copy(t)), "--opset", "999"], "--opset"),
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
         str(t / "r"), "--resume", str(checkpoint_copy(t))], "resume with the config"),
    "train_resume_from_shipped_checkpoint": lambda t, c, d: (
        ["train", "--config", yaml_file(t, _shipped_config()), "--data-root", d, "--out", str(t / "r"),
         "--resume", str(checkpoint_copy(t))], "not a last.pt"),
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
        ["run", str(zero_frames(t / "z.avi")), "-o", str(t / "o.mp4")], "gave no frames; nothing was written"),
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


def _shipped_config() -> str:
    from segrt.train.checkpoint import load

    args = json.dumps(load(zoo_dir() / "fcn8s_camvid.pt")["model_args"])
    return TRAIN + f"model_args: {args}\n"


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




@pytest.mark.parametrize("name", list(CASES))
def test_refused_in_one_line_and_nothing_changes(name, tmp_path, clip, tiny_camvid):
    argv, expected = CASES[name](tmp_path, str(clip), str(tiny_camvid))
    before, clip_sha, data_before = snapshot(tmp_path), sha(clip), snapshot(tiny_camvid)
    result = segrt(*argv, cwd=tmp_path, timeout=240)
    err = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, err[-2000:])
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err[-2000:]
    assert expected in err, err
    assert len(err) < 1200, len(err)  # values are excerpted, never printed whole
    assert snapshot(tmp_path) == before  # inputs byte-identical; no output, temporary or folder added
    assert sha(clip) == clip_sha and snapshot(tiny_camvid) == data_before


def test_corpus_covers_at_least_40_cases():
    assert len(CASES) >= 40

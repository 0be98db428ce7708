import json

import pytest

from segrt import __version__
from segrt.app.cli import cli, main

COMMANDS = [["info"], ["data"], ["data", "camvid"], ["train"], ["export"], ["run"], ["models"]]


def test_version(capsys):
    main(["--version"])
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command, capsys):
    main([*command, "--help"])
    out = capsys.readouterr().out
    assert out.startswith("Usage: segrt") and len(out.splitlines()) > 3


def test_help_lists_every_command(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    for name in cli.commands:
        assert name in out


def test_info_json_reports_backends_and_why(capsys):
    main(["info", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["backends"]["onnxruntime"]["usable"] is True
    assert doc["backends"]["tensorrt"]["why"]  # always says why (not) usable
    assert doc["gpu"]["why"] and doc["machine"]["cores"] >= 1


def test_models_lists_the_shipped_files_and_the_default_per_device(capsys):
    from segrt.engines.zoo import CPU_DEFAULT, GPU_DEFAULT, zoo_dir

    main(["models"])
    lines = capsys.readouterr().out.splitlines()
    cpu = next(line for line in lines if line.startswith(CPU_DEFAULT.removesuffix(".onnx") + " "))
    gpu = next(line for line in lines if line.startswith(GPU_DEFAULT.removesuffix(".onnx") + " "))
    assert cpu.rstrip().endswith("cpu") and "int8" in cpu
    assert gpu.rstrip().endswith("cuda, tensorrt") and "fp32 + flip" in gpu  # its TTA is part of the graph
    column = lines[0].index("precision")  # the columns line up, however long the longest name
    rows = [line for line in lines[1:] if not line.startswith("(")]
    assert all(line[column - 1] == " " and line[column] != " " for line in rows), rows
    main(["models", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert all(r["cpu_ms"] is None for r in doc["models"])  # listing times nothing
    main(["models", "--json", "--time"])
    doc = json.loads(capsys.readouterr().out)
    timed = {r["name"]: r["cpu_ms"] for r in doc["models"] if r["file"].endswith(".onnx")}
    assert all(ms is not None and 0 < ms < 5000 for ms in timed.values()), timed  # measured here, each one
    files = {r["file"] for r in doc["models"]}
    assert files == {p.name for p in zoo_dir().iterdir() if p.suffix == ".onnx"} | {
        p.name for p in zoo_dir().glob("*.pt") if not p.with_suffix(".onnx").exists()}


def test_unknown_option_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "x.mp4", "--frobnicate"])
    assert exit_info.value.code == 2


def test_bad_training_config_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "t.yaml"
    cfg.write_text("model: fastscnn\nepochz: 3\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", str(cfg)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{cfg}: unknown key 'epochz'" in err


@pytest.mark.parametrize("args", [["--eval-frames", "3"], ["--calib-frames", "3"]], ids=["eval", "calib"])
def test_export_refuses_quantization_options_without_a_quantization_step(args, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGRT_RUNS_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "fcn8s_camvid", *args])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {args[0]} is for the quantization step: add --precision fp16 or int8, or leave it out"]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_fp16_notes_the_calibration_options_it_does_not_use(tmp_path, camvid_root, capsys):
    """A script that loops over precisions with the same options: FP16 says what it ignores, and
    goes on (here to the gate, on two frames)."""
    from segrt.engines.zoo import zoo_dir

    for suffix in (".onnx", ".json"):
        (tmp_path / f"m{suffix}").write_bytes((zoo_dir() / f"fastscnn_camvid{suffix}").read_bytes())
    main(["quantize", str(tmp_path / "m.onnx"), "--precision", "fp16", "--calib", "camvid:train",
          "--calib-frames", "8", "--eval-frames", "2", "--data-root", str(camvid_root)])
    err = capsys.readouterr().err.splitlines()
    assert [ln for ln in err if ln.startswith("note:")] == [
        "note: --calib is for INT8 (FP16 needs no calibration); ignored",
        "note: --calib-frames is for INT8 (FP16 needs no calibration); ignored"]
    assert (tmp_path / "m.fp16.onnx").is_file()

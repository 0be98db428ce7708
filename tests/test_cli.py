import json

import pytest

from segrt import __version__
from segrt.cli import cli, main

COMMANDS = [["info"], ["data"], ["data", "camvid"], ["train"], ["export"], ["run"]]


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

"""README snippets are run, so they cannot rot."""

import re
import shlex
from pathlib import Path

import pytest

from segrt.cli import main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.S)


def commands(prefix: str) -> list[str]:
    """Commands in the README's bash blocks (continuation lines joined, comments dropped)."""
    lines = [line.split("  #")[0].strip() for block in BLOCKS for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line.startswith(prefix)]


def test_ci_runs_the_readme_test_command():
    (test_command,) = commands("./quickstart test")
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines
    assert "../shared" not in README  # a clone has no ../shared beside it


def test_readme_set_up_is_two_commands_of_one_script():
    assert commands("./quickstart ") == ["./quickstart demo", "./quickstart test"]
    script = (REPO / "quickstart").read_text()
    assert "segrt\" demo" in script and "pytest" in script


def test_the_demo_command_saves_a_playable_overlay_and_report(dashcam, tmp_path, monkeypatch, capsys):
    """What `./quickstart demo` ends in: `segrt demo` (with the clip from SEGRT_DEMO_VIDEO)."""
    import cv2

    monkeypatch.setenv("SEGRT_DEMO_VIDEO", str(dashcam))
    out = tmp_path / "demo.mp4"
    main(["demo", "-o", str(out)])
    printed = capsys.readouterr().out
    assert f"saved {out}" in printed and "221 frames in" in printed
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 221
    assert out.with_suffix(".json").is_file()


@pytest.mark.parametrize("command", commands("segrt "))
def test_every_readme_command_parses(command, capsys):
    """Each documented command and its options exist (--help stops before doing the work)."""
    main(shlex.split(command)[1:] + ["--help"])  # an unknown option exits with code 2
    assert capsys.readouterr().out.startswith("Usage: segrt")

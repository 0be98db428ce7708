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
    (test_command,) = commands("python3 -m pytest")
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_demo_command_runs(dashcam, tmp_path, monkeypatch):
    demo = commands("segrt run ../shared")[0]
    monkeypatch.chdir(REPO)
    if not (REPO / shlex.split(demo)[2]).is_file():
        pytest.skip("the README's relative clip path does not exist from this checkout")
    out, report = tmp_path / "demo.mp4", tmp_path / "demo.json"
    args = shlex.split(demo)[1:]
    for flag, path in (("--output", out), ("--report", report)):  # into tmp_path, not the checkout
        if flag in args:
            args[args.index(flag) + 1] = str(path)
        else:
            args += [flag, str(path)]
    main(args + ["--max-frames", "5", "--no-progress"])
    assert out.is_file() and report.is_file()


@pytest.mark.parametrize("command", commands("segrt "))
def test_every_readme_command_parses(command, capsys):
    """Each documented command and its options exist (--help stops before doing the work)."""
    main(shlex.split(command)[1:] + ["--help"])  # an unknown option exits with code 2
    assert capsys.readouterr().out.startswith("Usage: segrt")

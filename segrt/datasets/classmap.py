"""Scoring a model of one taxonomy on labels of another: a class map, label value → class name.

A class map is a YAML file (shipped ones live in ``configs/classmaps/`` and are named by
their stem, e.g. ``cityscapes19_to_camvid``)::

    source: Cityscapes train ids (0-18)
    map:
      0: Road        # a label value of the dataset → a class of the model
      9: void        # no class of the model: ignored, like every value not listed

The map is by class *name*, checked against the model's classes when it is applied, so a
misspelt class is an error that lists the valid ones rather than a silently ignored class.

Labels coarser than the model's classes (IDD-Lite's 7: "far objects" is CamVid's Building and
Tree) are scored in their own taxonomy instead: ``classes`` names it and ``predictions`` maps
every class of the model into it, so predictions and labels meet in the coarse classes::

    source: IDD level-1 ids (0-6)
    classes: [drivable, non-drivable, ...]
    map: {0: drivable, 1: non-drivable, ...}
    predictions: {Road: drivable, Pavement: non-drivable, Building: far objects, Tree: far objects, ...}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from segrt.config import load_config
from segrt.errors import ConfigError, SegrtError
from segrt.files import shown

VOID = "void"
IGNORE = 255


@dataclass(frozen=True)
class ClassMap:
    # what the label values are, in words (shown in reports)
    source: str
    # label value (0..254) → a class name (of the model, or of ``classes``), or "void"
    map: dict[int, str]
    # the classes scored, when not the model's own (labels coarser than the model's classes)
    classes: tuple[str, ...] = ()
    # with ``classes``: every class of the model → the one of ``classes`` it counts as
    predictions: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.map:
            raise ValueError("key 'map' must list at least one label value")
        bad = [v for v in self.map if not 0 <= v < IGNORE]
        if bad:
            raise ValueError(f"key 'map': label values must be 0..{IGNORE - 1}, got {bad[0]}")
        if bool(self.classes) != bool(self.predictions):
            raise ValueError("keys 'classes' and 'predictions' go together: a coarser taxonomy and how the model's "
                             "classes map into it, or neither")
        for key, names in (("map", self.map.values()), ("predictions", self.predictions.values())):
            unknown = sorted({n for n in names if n != VOID and n not in self.classes}) if self.classes else []
            if unknown:
                raise ValueError(f"key '{key}': {unknown[0]!r} is not one of 'classes' "
                                 f"({', '.join(self.classes)})")
        if VOID in self.predictions.values():
            raise ValueError("key 'predictions': every class of the model must count as one of 'classes', not void")
        unreached = [c for c in self.classes if c not in self.predictions.values()]
        if unreached:
            raise ValueError(f"key 'classes': no class of the model counts as {unreached[0]!r} in 'predictions'; "
                             "map one to it or leave it out")

    def scored_classes(self, model_classes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        return self.classes or tuple(model_classes)

    def prediction_lut(self, model_classes: tuple[str, ...] | list[str]) -> np.ndarray | None:
        """uint8 (256,): the model's class index → index in ``classes``; None when the model's
        own classes are scored. A model class the map does not place is an error."""
        if not self.classes:
            return None
        missing = [c for c in model_classes if c not in self.predictions]
        unknown = sorted(set(self.predictions) - set(model_classes))
        if missing or unknown:
            raise SegrtError(f"class map ({self.source}): 'predictions' must place exactly the model's classes "
                             f"({', '.join(model_classes)}); "
                             + "; ".join(([f"not the model's: {', '.join(unknown)}"] if unknown else [])
                                         + ([f"missing: {', '.join(missing)}"] if missing else [])))
        table = np.zeros(256, np.uint8)
        for i, c in enumerate(model_classes):
            table[i] = self.classes.index(self.predictions[c])
        return table

    def lut(self, classes: tuple[str, ...] | list[str]) -> np.ndarray:
        """uint8 (256,): label value → index in ``classes``; void and unlisted values → 255.
        A name that is not one of ``classes`` is an error naming it and the valid ones."""
        unknown = sorted({n for n in self.map.values() if n != VOID and n not in classes})
        if unknown:
            raise SegrtError(f"class map ({self.source}): {', '.join(map(repr, unknown))} is not a class of the "
                             f"model; its classes: {', '.join(classes)} (or {VOID!r})")
        table = np.full(256, IGNORE, np.uint8)
        for value, name in self.map.items():
            if name != VOID:
                table[value] = list(classes).index(name)
        return table


def shipped_class_maps() -> dict[str, Path]:
    """Name → file of the class maps installed with segrt."""
    folder = Path(str(resources.files("segrt.configs"))) / "classmaps"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def load_class_map(name_or_path: str | Path) -> ClassMap:
    """A shipped class map by name, or a YAML file."""
    shipped = shipped_class_maps()
    path = shipped.get(str(name_or_path)) or Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"--class-map {shown(path)}: neither a file nor a shipped class map; shipped: "
                          f"{', '.join(shipped)}")
    return load_config(path, ClassMap)


class MappedLabels:
    """A dataset reader whose labels are mapped by a class map: it reads as a dataset of the
    scored classes (the model's, or the map's coarser ``classes``); void and unmapped values
    → 255, ignored."""

    def __init__(self, ds, class_map: ClassMap, model_classes: tuple[str, ...] | list[str]) -> None:
        self.ds, self.class_map = ds, class_map
        self.classes = class_map.scored_classes(model_classes)
        self.split, self.ignore_index = ds.split, IGNORE
        self._lut = class_map.lut(self.classes)
        # a dataset's own ignore value must stay ignored whatever the map says
        ds_ignore = getattr(ds, "ignore_index", None)
        if ds_ignore is not None and 0 <= ds_ignore < 256:
            self._lut[ds_ignore] = IGNORE
        # the map must be the dataset's: it places (or voids, by name) every class value the
        # dataset declares, so a map of another taxonomy is an error, not a silent score
        values = [v for v in range(len(getattr(ds, "classes", ()))) if v != ds_ignore]
        unplaced = [v for v in values if v not in class_map.map]
        if unplaced:
            raise SegrtError(f"class map ({class_map.source}) does not place the dataset's label values "
                             f"{', '.join(map(str, unplaced[:6]))}{' …' if len(unplaced) > 6 else ''} (the dataset has "
                             f"{len(values)} classes: {', '.join(ds.classes[:3])}, …); is it the map for this "
                             "dataset? List a value as 'void' to ignore it")

    def __len__(self) -> int:
        return len(self.ds)

    def read_image(self, i: int) -> np.ndarray:
        return self.ds.read_image(i)

    def read_label(self, i: int) -> np.ndarray:
        """uint8 (H, W): indices into ``classes``, 255 = ignored."""
        return self._lut[self.ds.read_label(i)]

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image, label = self.ds.read(i)
        return image, self._lut[label]


class MappedPredictions:
    """An open backend whose label maps are mapped into a class map's coarser classes; its
    manifest names those classes (each coloured as the first model class mapped to it)."""

    def __init__(self, backend, class_map: ClassMap) -> None:
        m = backend.manifest
        self.backend, self.name = backend, backend.name
        self.path = getattr(backend, "path", m.name)
        self._lut = class_map.prediction_lut(m.classes)
        classes = class_map.scored_classes(m.classes)
        palette = tuple(m.palette[self._lut[:len(m.classes)].tolist().index(i)] for i in range(len(classes)))
        self.manifest = dataclasses.replace(m, classes=tuple(classes), palette=palette)

    def input_buffer(self, batch: int = 1) -> np.ndarray:
        return self.backend.input_buffer(batch)

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self._lut[self.backend.infer(x)]


def apply(class_map: ClassMap | None, backend, ds):
    """(backend, dataset) as scored under ``class_map``: both unchanged without one."""
    if class_map is None:
        return backend, ds
    scored = MappedLabels(ds, class_map, backend.manifest.classes)
    return (MappedPredictions(backend, class_map) if class_map.classes else backend), scored

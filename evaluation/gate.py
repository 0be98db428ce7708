"""Quantization behind the accuracy gate, the one path that ``segrt quantize``, ``segrt export
--precision`` and ``segrt zoo`` take: calibration frames and gate frames from the dataset the
model was trained on (its manifest says which), scored here, made and written by
:func:`segrt.engines.quantize.quantize_model` (conversion, which takes the gate as a callback:
it sits below evaluation)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from segrt.datasets import DATASETS
from segrt.errors import DataError


@dataclasses.dataclass(frozen=True)
class GateData:
    """Where the gate's frames come from. ``dataset`` None: the one the model's manifest names."""

    dataset: str | None = None
    data_root: Path | None = None
    calib: str | None = None        # DATASET:SPLIT, an image folder or a video; None: DATASET:train
    calib_frames: int = 64
    eval_frames: int | None = None  # the gate scores N val frames spread over the split; None: all
    threads: int = 0
    progress: bool | None = None    # progress bars: None = on a terminal only


# datasets with a home of their own (a variable or segrt data's cache): a manifest may name them
GATED = ("camvid", "cityscapes")


def trained_on(manifest) -> str | None:
    """The dataset a model's manifest says it was trained on (``camvid train (367 frames)`` →
    camvid), if it is one with a home of its own; else the one with exactly the model's classes
    (a folder or pairs dataset lives wherever its user put it: --dataset and --data-root say)."""
    from segrt.datasets import camvid, cityscapes

    name = str((manifest.provenance or {}).get("trained_on") or "").split(" ", 1)[0].lower()
    if name in GATED:
        return name
    by_classes = {camvid.CLASSES: "camvid", cityscapes.CLASSES: "cityscapes"}
    return by_classes.get(tuple(manifest.classes))


def gate_dataset(manifest, given: str | None, model: Path) -> str:
    if given:
        return given
    name = trained_on(manifest)
    if name is None:
        raise DataError(f"{model}: its manifest names no dataset segrt knows to score the gate on; "
                        f"give one with --dataset ({', '.join(DATASETS.names())}) and its --data-root")
    return name


def quantize_with_gate(model: Path, opts, data: GateData = GateData(),
                       echo: Callable[[str], None] = print):
    """FP16/INT8 of the FP32 ``model`` with ``opts`` (a
    :class:`segrt.engines.quantize.QuantizeOptions`), scored on the val split of the model's
    own dataset and written only if it passes (or ``opts.force``). Returns the
    :class:`segrt.engines.quantize.QuantizeResult`; its ``output`` is None when refused."""
    from segrt.calibration.cache import calibration_tensor, read_frames
    from segrt.datasets import open_dataset, subset
    from segrt.engines.base import open_backend
    from segrt.engines.manifest import load_verified_manifest
    from segrt.engines.quantize import quantize_model
    from segrt.evaluation.evaluate import evaluate_backend

    base = load_verified_manifest(model)
    dataset = gate_dataset(base, data.dataset, model)
    val = open_dataset(dataset, data.data_root, "val")
    if data.eval_frames:
        val = subset(val, data.eval_frames)
    calibration = None
    if opts.precision == "int8":
        source = data.calib or f"{dataset}:train"
        frames = read_frames(source, data.calib_frames, data.data_root)
        tensor, key, cached = calibration_tensor(frames, base.preprocess, progress=data.progress)
        echo(f"calibration: {len(frames)} frames from {source} ({'cache hit' if cached else 'cached'} {key[:12]})")
        calibration = (tensor, {"source": source, "frames": len(frames), "sha256": key})

    def evaluate(path: Path) -> dict:
        with open_backend(path, threads=data.threads) as backend:
            return evaluate_backend(backend, val, progress=data.progress)

    echo(f"gate: {dataset} val ({len(val)} frames)")
    return quantize_model(model, opts, evaluate, calibration, echo=echo)

"""The shipped models: ONNX files with their manifests (runnable without torch) and FP16
checkpoints (re-export, fine-tune). Torch-free: listing reads manifests only.

Two defaults, each chosen by measurement (docs/zoo.md, "The two defaults"): on a GPU the model
that holds up best on roads CamVid never showed and should still run in real time there (not
yet timed on one); on the CPU an INT8 file that ONNX Runtime runs fast: the same network at
a smaller input, taught by the GPU default.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

GPU_DEFAULT = "fpn_lite0_robust_camvid.onnx"  # 704x384, flip TTA in the graph, CamVid train+val
# 416x224 INT8, distilled from the GPU default and self-trained on unlabeled driving video
# (since 2026-12-03); the CPU default before it, fpn_lite0_camvid_352x256.int8, ships on.
CPU_DEFAULT = "fpn_lite0_student_camvid_416x224.int8.onnx"
# The CamVid FPN at 608x448, one pass, with its FP16 checkpoint beside it: the start of the
# robust recipes, the teacher of the distilled ones and the CPU default's weights.
BASE_FPN = "fpn_lite0_camvid.onnx"
DEFAULTS = {"cpu": CPU_DEFAULT, "cuda": GPU_DEFAULT, "tensorrt": GPU_DEFAULT}


def zoo_dir() -> Path:
    return Path(str(resources.files("segrt"))) / "zoo"  # data beside the core package: segrt/zoo/


def base_model() -> Path:
    """The shipped FPN that has its checkpoint beside it (``BASE_FPN``): what re-exports,
    fine-tunes and the tests start from."""
    return zoo_dir() / BASE_FPN


def default_for(device: str | None) -> Path:
    """The shipped default model for ``device`` (cpu, cuda, tensorrt; None = cpu)."""
    return zoo_dir() / DEFAULTS[device or "cpu"]


def names(folder: Path | None = None) -> list[str]:
    """Every shipped model's name (its file stem: fcn8s_camvid, fpn_lite0_camvid_352x256.int8)."""
    folder = folder or zoo_dir()
    return sorted({p.name.removesuffix(p.suffix) for p in folder.iterdir() if p.suffix in (".onnx", ".pt")})


def resolve_model(value: str | Path, prefer: tuple[str, ...] = (".onnx", ".pt"), flag: str = "--model") -> Path:
    """A model argument as a file: an existing path as given, else a shipped model by name
    (``unet_camvid`` → ``segrt/zoo/unet_camvid.onnx``, the first of ``prefer`` that exists; a
    name with its suffix picks that file). Anything else is a one-line error listing the names."""
    from segrt.engines.remote import RemoteModel, is_remote
    from segrt.errors import ModelError
    from segrt.files import shown

    if is_remote(str(value)):
        return RemoteModel(str(value))  # type: ignore[return-value]  # served, not a file: str with Path's name/stem
    path = Path(value)
    if str(value) == "":
        raise ModelError(f"{flag}: empty; give a model file or a shipped model name (segrt models)")
    if path.exists() or len(path.parts) > 1:
        return path
    folder = zoo_dir()
    # a family name gets the file that ships for it: unet_lite0_camvid → unet_lite0_camvid.int8.onnx
    stems = [path.name, *(f"{path.name}.{p}" for p in ("int8", "fp16"))]
    for candidate in [folder / path.name, *(folder / f"{stem}{s}" for stem in stems for s in prefer)]:
        if candidate.is_file() and candidate.suffix in (".onnx", ".pt", ".engine", ".plan"):
            return candidate
    other = sorted(p.name for stem in stems for p in folder.glob(f"{stem}.*") if p.suffix in (".onnx", ".pt")
                   and p.suffix not in prefer and p.name.count(".") == stem.count(".") + 1)
    if other:
        wanted = " or ".join(prefer)
        fix = ("it ships as ONNX only, with no checkpoint to export or fine-tune: run it as it is (segrt run -m "
               f"{path.name}), or export a checkpoint you trained") if ".pt" in prefer else \
            f"give a {wanted} file"
        raise ModelError(f"{flag} {shown(value)}: the shipped model is {', '.join(other)}, not a {wanted}; {fix}")
    raise ModelError(f"{flag} {shown(value)}: no such file, and not a shipped model; shipped: "
                     f"{', '.join(names(folder))} (see 'segrt models')")


def _miou(doc: dict) -> float | None:
    """Val mIoU of a manifest as the zoo measured it (ONNX Runtime, scored at CamVid's 480x360,
    the figure docs/zoo.md shows), else the export's own metrics (torch, at training time), else the
    accuracy gate's score of a quantized file (all of val unless --eval-frames)."""
    metrics = doc.get("metrics") or {}
    miou = metrics.get("val_miou_onnxruntime", metrics.get("miou"))
    if miou is None:
        miou = ((doc.get("quantization") or {}).get("gate") or {}).get("miou")
    return miou


def listing(folder: Path | None = None) -> list[dict]:
    """One row per shipped model file: ONNX files from their manifests, and checkpoints that
    have no ONNX of the same stem (they need torch, or ``segrt export``)."""
    folder = folder or zoo_dir()
    rows = []
    for path in sorted(folder.glob("*.onnx")):
        manifest = path.with_suffix(".json")
        doc = json.loads(manifest.read_text()) if manifest.is_file() else {}
        pre = doc.get("preprocess") or {}
        rows.append({"name": path.name.removesuffix(".onnx"), "file": path.name,
                     "architecture": doc.get("architecture"),
                     "precision": doc.get("precision"), "input": f"{pre.get('width')}x{pre.get('height')}",
                     "tta": (doc.get("provenance") or {}).get("tta"),
                     "val_miou": _miou(doc), "mb": round(path.stat().st_size / 1e6, 1),
                     "default_for": sorted(d for d, f in DEFAULTS.items() if f == path.name)})
    onnx_stems = {p.stem for p in folder.glob("*.onnx")}
    for path in sorted(folder.glob("*.pt")):
        if path.stem not in onnx_stems:
            rows.append({"name": path.stem, "file": path.name, "architecture": None, "precision": "fp16 checkpoint",
                         "input": None, "tta": None, "val_miou": None, "mb": round(path.stat().st_size / 1e6, 1),
                         "default_for": []})
    return rows

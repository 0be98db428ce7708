"""The JSON manifest beside every exported model: what the model is and how to feed it.

``model.onnx`` → ``model.json``. It names the classes, palette, preprocessing, precision,
opset, the SHA-256 of the checkpoint it came from and of the model file itself, so a model
is never fed differently from how it was trained, and a manifest never describes a
different file than the one beside it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from segrt.errors import ModelError
from segrt.files import manifest_path
from segrt.preprocess import Preprocess

FORMAT = "segrt-manifest/1"
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ModelManifest:
    name: str
    architecture: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]  # RGB, one per class
    preprocess: Preprocess
    precision: str
    opset: int
    input_name: str
    output_name: str
    source_checkpoint_sha256: str
    model_sha256: str
    metrics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)  # versions, date, command
    # FP16/INT8 models: target, tool, base model, calibration, exclusions, accuracy gate
    quantization: dict = field(default_factory=dict)
    # TensorRT engines: version, GPU, source ONNX, I/O, build settings
    engine: dict = field(default_factory=dict)

    def to_json(self) -> str:
        d = asdict(self)
        d["preprocess"] = self.preprocess.to_dict()
        d["output"] = "labels: uint8 (N, H, W) class index per pixel (argmax inside the graph)"
        text = json.dumps({"format": FORMAT, **d}, indent=2)
        # one line per short list of numbers (colours, mean/std) instead of one per number
        return re.sub(r"\[\s+([-\d.,\s]+?)\s+\]",
                      lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text) + "\n"

    def save(self, model_path: Path) -> Path:
        """Writes ``model.json`` beside ``model_path`` (temporary name, then rename)."""
        from segrt.files import write_text_atomic

        return write_text_atomic(manifest_path(model_path), self.to_json(), "manifest")


def manifest_from_checkpoint(ckpt: dict, name: str, checkpoint_sha256: str, model_sha256: str,
                             opset: int = 0, provenance: dict | None = None) -> ModelManifest:
    """The manifest of a model made from a segrt checkpoint: classes, palette and
    preprocessing come from the checkpoint, never from the caller."""
    return ModelManifest(
        name=name, architecture=ckpt["model"], classes=tuple(ckpt["classes"]),
        palette=tuple(tuple(int(v) for v in c) for c in ckpt["palette"]),
        preprocess=Preprocess.from_dict(ckpt["preprocess"]), precision="fp32", opset=opset,
        input_name="image", output_name="labels", source_checkpoint_sha256=checkpoint_sha256,
        model_sha256=model_sha256,
        metrics={k: (ckpt.get("metrics") or {}).get(k) for k in ("miou", "pixel_accuracy", "per_class_iou")},
        provenance=provenance or {})


def load_manifest(model_path: str | Path) -> ModelManifest:
    """Reads and checks the manifest beside ``model_path``."""
    path = manifest_path(model_path)
    if not path.is_file():
        raise ModelError(
            f"{path}: manifest missing beside {Path(model_path).name}; export the model with "
            "'segrt export' (it writes both files)")
    from segrt.files import read_user_text

    return manifest_from_text(read_user_text(path, "manifest", MAX_MANIFEST_BYTES, ModelError), path)


def manifest_from_text(text: str, path: str | Path) -> ModelManifest:
    """A manifest's JSON text, checked field by field; ``path`` names where it came from in
    errors (a file, or a served model's configuration)."""
    try:
        d = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise ModelError(f"{path}: unreadable manifest ({detail}); re-export the model") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ModelError(f"{path}: not a segrt manifest (expected format {FORMAT}); re-export the model")
    problem = _check_fields(d)
    if problem:
        raise ModelError(f"{path}: {problem}; fix the manifest or re-export the model")
    try:
        m = ModelManifest(
            name=d["name"], architecture=d["architecture"], classes=tuple(d["classes"]),
            palette=tuple(tuple(int(v) for v in c) for c in d["palette"]),
            preprocess=Preprocess.from_dict(d["preprocess"]), precision=d["precision"],
            opset=int(d["opset"]), input_name=d["input_name"], output_name=d["output_name"],
            source_checkpoint_sha256=d["source_checkpoint_sha256"],
            model_sha256=d["model_sha256"], metrics=d.get("metrics", {}),
            provenance=d.get("provenance", {}), quantization=d.get("quantization") or {},
            engine=d.get("engine") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: manifest field {exc} missing or malformed; re-export the model") from None
    if m.precision not in PRECISIONS:
        raise ModelError(f"{path}: precision {m.precision!r} is not one of {', '.join(PRECISIONS)}")
    if len(m.palette) != len(m.classes):
        raise ModelError(f"{path}: {len(m.classes)} classes but {len(m.palette)} palette colours")
    return m


MAX_MANIFEST_BYTES = 4 << 20
MAX_SIDE = 16384  # pixels: input sizes beyond this are refused, as images and videos are


def _check_fields(d: dict) -> str | None:
    """What is wrong with a parsed manifest's typed fields, or None."""
    from segrt.files import excerpt

    def number(v: object) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")

    classes, palette, pre = d.get("classes"), d.get("palette"), d.get("preprocess")
    if not isinstance(classes, list) or not 1 <= len(classes) <= 255 or not all(isinstance(c, str) and 0 < len(c)
                                                                              <= 64 for c in classes):
        return "'classes' must be a list of 1-255 class names (strings of 1-64 characters)"
    if not isinstance(palette, list) or len(palette) != len(classes):
        return f"'palette' must hold one colour per class ({len(classes)})"
    for colour in palette:
        if not (isinstance(colour, list) and len(colour) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in colour)):
            return f"palette entry {excerpt(colour)} is not three integers 0-255"
    if not isinstance(pre, dict):
        return "'preprocess' must be a mapping"
    for key in ("width", "height"):
        v = pre.get(key)
        if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE):
            return f"preprocess {key} {excerpt(v)} must be an integer 1-{MAX_SIDE}"
    for key in ("mean", "std"):
        v = pre.get(key)
        if not (isinstance(v, list) and len(v) == 3 and all(number(x) for x in v)):
            return f"preprocess {key} {excerpt(v)} must be three numbers (R, G, B)"
    if any(x <= 0 for x in pre["std"]):
        return f"preprocess std {excerpt(pre['std'])} must be positive"
    for key in ("name", "architecture", "precision", "input_name", "output_name", "model_sha256"):
        if not isinstance(d.get(key), str):
            return f"'{key}' must be a string"
    if not (isinstance(d.get("opset"), int) and 0 <= d["opset"] <= 100):
        return f"'opset' {excerpt(d.get('opset'))} must be an integer 0-100"
    return None


def check_labels(labels, manifest: ModelManifest, path: str | Path) -> None:
    """A label map holding a class index the manifest has no name for: the manifest belongs to
    another model (one with more classes)."""
    top = int(labels.max()) if labels.size else 0
    if top >= len(manifest.classes):
        raise ModelError(f"{path}: the model predicts class index {top}, but its manifest names only "
                         f"{len(manifest.classes)} classes; the manifest belongs to another model: re-export it")


def load_verified_manifest(model_path: str | Path) -> ModelManifest:
    """The manifest beside ``model_path``, refusing it if the file's SHA-256 differs from the
    one recorded at export (the model was replaced or edited after export)."""
    from segrt.files import sha256_file

    manifest = load_manifest(model_path)
    digest = sha256_file(model_path)
    if digest != manifest.model_sha256:
        raise ModelError(
            f"{model_path}: file does not match its manifest (sha256 {digest[:12]} vs "
            f"{manifest.model_sha256[:12]}); the model was changed after export, re-export it")
    return manifest

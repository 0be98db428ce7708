"""Checkpoints carry their own class names, palette and preprocessing."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch

from segrt.errors import ModelError

FORMAT = "segrt-checkpoint/1"


def save(path: Path, payload: dict) -> None:
    """Write atomically: a crash mid-write never leaves a truncated ``best.pt``."""
    from segrt.files import atomic_output

    with atomic_output(path, "checkpoint") as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)


def read_torch_file(path: str | Path, what: str, fix: str, weights_only: bool):
    """``torch.load`` on the CPU with one-line errors naming the file, what it should be, and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: {what} not found; {fix}")
    check_archive(path, what, fix)
    from torch.torch_version import TorchVersion

    try:
        # TorchVersion (a str) is the one non-builtin type segrt's own checkpoints hold
        with torch.serialization.safe_globals([TorchVersion]), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols on stderr
            return torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if weights_only and "GLOBAL" in text:  # the pickle names a function or class to call
            detail = text.split("GLOBAL", 1)[1].split()[0]
            raise ModelError(f"{path}: refused to load: it holds more than tensors and numbers ({detail}), which "
                             f"could run code; a {what} never needs that. {fix}") from None
        raise ModelError(f"{path}: not a readable {what} (UnpicklingError); {fix}") from None
    except Exception as exc:  # torch raises many types for a bad file  # noqa: BLE001
        raise ModelError(f"{path}: not a readable {what} ({type(exc).__name__}); {fix}") from None


MAX_ENTRIES = 100_000  # records in a torch zip archive: one per tensor, a model has a few thousand
MAX_PICKLE = 64 << 20  # bytes: the pickle holds names and shapes only, the tensors are apart
INFLATE_SLACK = 64 << 20  # bytes a zip may inflate beyond its own size (torch stores, never deflates)


def check_archive(path: Path, what: str, fix: str) -> None:
    """Refuses a zip archive (torch's format) that would inflate far beyond its size (a zip
    bomb) or holds absurdly many records, before torch reads any of it: torch.load inflates
    the pickle into memory whole. torch's own files are stored uncompressed, so what they
    inflate to is about their size."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return  # the legacy pickle format: torch reads it as it streams, bounded by the file
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise ModelError(f"{path}: not a readable {what} (a damaged zip: {exc}); {fix}") from None
    if len(infos) > MAX_ENTRIES:
        raise ModelError(f"{path}: refused: {len(infos)} records in the archive (at most {MAX_ENTRIES}); "
                         f"not a {what}. {fix}")
    inflated = sum(i.file_size for i in infos)
    pickled = max((i.file_size for i in infos if i.filename.endswith(".pkl")), default=0)
    limit = path.stat().st_size + INFLATE_SLACK
    if inflated > limit or pickled > MAX_PICKLE:
        raise ModelError(f"{path}: refused: it inflates to {inflated / 2**20:.0f} MiB from "
                         f"{path.stat().st_size / 2**20:.1f} MiB on disk (a zip bomb?); not a {what}. {fix}")


def load(path: str | Path) -> dict:
    # weights_only: tensors, numbers, strings and containers only. A pickle that would import
    # or call anything (os.system, …) is refused before any of it runs.
    ckpt = read_torch_file(path, "checkpoint", "train one with 'segrt train', or re-download it",
                           weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelError(f"{path}: not a segrt checkpoint (format {FORMAT} expected)")
    return upgrade(ckpt)


# Checkpoints saved before the encoder contract (train/models/encoders): the encoder was
# ``backbone`` (FCN-8s, DeepLab v3+) or ``features`` (SegNet's VGG), chosen by ``backbone:``.
LEGACY_PREFIXES = {"fcn8s": ("backbone.", "encoder."), "deeplabv3plus": ("backbone.", "encoder."),
                   "segnet": ("features.", "encoder.features.")}
LEGACY_ARGS = {"fcn8s", "deeplabv3plus", "unet_resnet34"}


def upgrade(ckpt: dict) -> dict:
    """A checkpoint in today's names: parameter prefixes and the ``backbone`` model argument
    of checkpoints saved before the encoder contract are renamed; others pass unchanged."""
    model = ckpt.get("model")
    args = dict(ckpt.get("model_args", {}))
    if model in LEGACY_ARGS and "backbone" in args:
        args["encoder"] = args.pop("backbone")
        ckpt = {**ckpt, "model_args": args}
    old, new = LEGACY_PREFIXES.get(model, (None, None))
    state = ckpt.get("state_dict")
    if old and isinstance(state, dict) and any(k.startswith(old) for k in state):
        ckpt = {**ckpt, "state_dict": {new + k[len(old):] if k.startswith(old) else k: v for k, v in state.items()}}
    return ckpt


def build_from_checkpoint(ckpt: dict):
    """The model of a loaded checkpoint, in eval mode, float32."""
    from segrt.train.models import build_model

    net = build_model(ckpt["model"], num_classes=len(ckpt["classes"]), **ckpt.get("model_args", {}))
    load_weights(net, ckpt["state_dict"])
    return net.eval()


SKIPPED_BUFFER = "num_batches_tracked"


def load_weights(net, state_dict: dict) -> None:
    """Loads a checkpoint's weights into ``net`` as float32, strictly: a mismatch is an
    error, never ignored. The one exception is BatchNorm's ``num_batches_tracked`` counter,
    which :func:`slim` leaves out of shipped checkpoints (it only matters with momentum=None,
    which no model here uses); the net keeps its own."""
    state = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    own = net.state_dict()
    state.update({k: own[k] for k in own.keys() - state.keys() if k.endswith(SKIPPED_BUFFER)})
    net.load_state_dict(state)


def slim(src: str | Path, dst: str | Path, fp16: bool = True) -> Path:
    """A checkpoint for shipping: weights (FP16 by default, half the size) and metadata,
    without optimiser, scheduler, random state and BatchNorm's batch counters (one zip record
    each: 1-2 % of a small model's file). Exported models are FP32 either way."""
    ckpt = load(src)
    keep = {k: v for k, v in ckpt.items()
            if k not in ("format", "optimizer", "scheduler", "torch_rng", "numpy_rng", "best")}
    keep["state_dict"] = {k: v.half() if fp16 and v.is_floating_point() else v
                          for k, v in ckpt["state_dict"].items() if not k.endswith(SKIPPED_BUFFER)}
    save(Path(dst), keep)
    return Path(dst)

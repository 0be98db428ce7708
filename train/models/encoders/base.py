"""The encoder contract, as segmentation_models.pytorch's ``get_encoder`` defines it.

An encoder is an ``nn.Module`` whose ``forward`` returns a list of feature maps at fixed
strides. It reports, as attributes, what a decoder and the rest of segrt need to know:

- ``out_channels``: the channel count of each returned feature;
- ``strides``: the stride of each returned feature relative to the input;
- ``mean``, ``std``: the input normalisation its weights expect (RGB, 0..1 units); the
  trainer puts them in the checkpoint, so they flow into every exported model's manifest;
- ``pretrained_weights``: named weights (``"imagenet"``) → where they come from.

Decoders see only ``out_channels`` and ``strides``: never an encoder's layers by name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from segrt.errors import ModelError
from segrt.preprocess import IMAGENET_MEAN, IMAGENET_STD


class Encoder(nn.Module):
    out_channels: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # prefixes of keys that pretrained files hold but the encoder does not build (classifiers)
    skipped_prefixes: tuple[str, ...] = ()
    # name → callable returning the weights file (a package's file, resolved when asked)
    pretrained_weights: dict[str, Callable[[], Path]] = {}

    def feature(self, stride: int) -> int:
        """Index of the feature at ``stride`` in :meth:`forward`'s list."""
        try:
            return self.strides.index(stride)
        except ValueError:
            raise ModelError(f"{type(self).__name__} has no feature at stride {stride}; "
                             f"strides: {', '.join(map(str, self.strides))}") from None

    def load_pretrained(self, weights: str | Path) -> None:
        """Loads named weights (``"imagenet"``) or a local ``state_dict`` file, strictly."""
        source = self.pretrained_weights.get(str(weights))
        path = source() if source is not None else Path(weights)
        if source is None and not path.is_file():
            names = ", ".join(self.pretrained_weights) or "none"
            raise ModelError(f"pretrained weights {weights!r}: neither a file nor a named weight set of "
                             f"{type(self).__name__} (named: {names})")
        load_state_strictly(self, path, self.skipped_prefixes)


def run_stages(layers: nn.Sequential, ends: tuple[int, ...], x) -> list:
    """Runs ``layers`` in order and returns the output after each index in ``ends``."""
    feats, start = [], 0
    for end in ends:
        x = layers[start:end + 1](x)
        feats.append(x)
        start = end + 1
    return feats


def load_state_strictly(module: nn.Module, path: str | Path, skipped: tuple[str, ...] = ()) -> None:
    """Loads a ``state_dict`` file into ``module``: every key used, every shape checked; only
    keys starting with ``skipped`` (a classifier the module does not build) are left out. A segrt
    checkpoint gives its ``encoder.`` weights: an encoder already fine-tuned by another model.
    Anything missing, unexpected or of another shape is an error naming the keys."""
    from segrt.train.checkpoint import SKIPPED_BUFFER, load_weights, read_torch_file

    path = Path(path)
    state = read_torch_file(path, "pretrained weights file", "pass a state_dict file (.pth)", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        if "model" in state:  # a segrt checkpoint: the weights of its encoder, which must be this one
            prefix = "encoder."
            state = {k[len(prefix):]: v for k, v in state["state_dict"].items() if k.startswith(prefix)}
            if not state:
                raise ModelError(f"{path}: a segrt checkpoint with no encoder weights; name one of a model "
                                 "with an encoder (model_args: {encoder: ...})")
        else:
            state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"{path}: not a state_dict (a mapping of names to tensors)")
    state = {k: v for k, v in state.items() if not k.startswith(skipped)}
    own = module.state_dict()
    # BatchNorm's step counters are not weights (segrt's shipped checkpoints leave them out)
    missing = sorted(k for k in set(own) - set(state) if not k.endswith(SKIPPED_BUFFER))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = [f"{len(v)} {name} (e.g. {v[0]})" for name, v in
                 (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong)) if v]
        raise ModelError(f"{path}: not weights for {type(module).__name__}: {'; '.join(parts)}")
    load_weights(module, state)  # checked above; it fills in the step counters a file may lack

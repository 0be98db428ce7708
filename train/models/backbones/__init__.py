"""Backbones in plain torch, with torchvision's parameter names.

Matching names let users who have ImageNet weights as a torchvision ``state_dict`` file load
them with :func:`load_pretrained`, without torchvision installed.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from segrt.errors import ModelError

# Classifier heads of torchvision checkpoints: present in the file, unused by segmentation.
HEAD_PREFIXES = ("fc.", "classifier.")


def load_pretrained(module: nn.Module, path: str | Path, extra_ignored: tuple[str, ...] = ()) -> None:
    """Loads a torchvision-layout ``state_dict`` file into ``module``, strictly.

    Only keys starting with :data:`HEAD_PREFIXES` (and ``extra_ignored``, for backbone layers a
    model deliberately does not build) are skipped; anything else missing, unexpected or of
    another shape is an error naming the keys.
    """
    from segrt.train.checkpoint import read_torch_file

    path = Path(path)
    state = read_torch_file(path, "pretrained weights file", "pass a torchvision state_dict (.pth)",
                            weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    ignored = HEAD_PREFIXES + extra_ignored
    state = {k: v for k, v in state.items() if not k.startswith(ignored)}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = [f"{len(v)} {name} (e.g. {v[0]})" for name, v in
                 (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong)) if v]
        raise ModelError(f"{path}: not weights for this {type(module).__name__} in torchvision's "
                         f"layout: {'; '.join(parts)}")
    module.load_state_dict(state)

"""BatchNorm in training: a model's BatchNorm layers (which weight averaging re-measures,
:mod:`segrt.train.swa`), and a pretrained encoder's statistics kept while a recipe's first
epochs train (``encoder_bn_frozen_epochs``): the encoder's BatchNorm layers stay in eval mode,
so they normalise with the running mean and variance they brought from ImageNet and do not
re-estimate them from CamVid's small batches of one town; their scale and shift still learn.
"""

from __future__ import annotations

import torch

from segrt.errors import ConfigError


def batchnorm_layers(module: torch.nn.Module) -> list[torch.nn.Module]:
    """Every BatchNorm layer in ``module`` (any dimension)."""
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def encoder_of(net: torch.nn.Module) -> torch.nn.Module | None:
    """The model's encoder, through the wrappers training puts around it (DDP's ``module``,
    the auxiliary head's ``net``), or None for a model without one."""
    inner = getattr(net, "module", net)
    return getattr(getattr(inner, "net", inner), "encoder", None)


def frozen_bn_epochs(cfg, model: torch.nn.Module) -> int:
    """The recipe's ``encoder_bn_frozen_epochs``, checked against ``model``."""
    epochs = cfg.encoder_bn_frozen_epochs
    if epochs and encoder_of(model) is None:
        raise ConfigError(f"key 'encoder_bn_frozen_epochs': model {type(model).__name__} has no encoder "
                          "whose BatchNorm statistics could be kept; leave the key out")
    return epochs


def train_mode(net: torch.nn.Module, hold_encoder_bn: bool) -> None:
    """``net.train()``, then, with ``hold_encoder_bn``, the encoder's BatchNorm layers back in
    eval mode."""
    net.train()
    if hold_encoder_bn:
        for m in batchnorm_layers(encoder_of(net)):
            m.eval()

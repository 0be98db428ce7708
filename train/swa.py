"""Stochastic weight averaging (Izmailov et al., "Averaging Weights Leads to Wider Optima and
Better Generalization", 2018): the mean of the weights at the end of each of the last epochs,
trained at a held learning rate, with BatchNorm's statistics re-estimated for the mean weights
(the average of running statistics is not the statistics of the averaged network).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from segrt.train.batchnorm import batchnorm_layers


class WeightAverage:
    """The running mean of a model's floating-point weights, one snapshot per :meth:`update`."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: dict[str, torch.Tensor] = {}

    def update(self, model: nn.Module) -> None:
        self.count += 1
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                v = v.detach().float().cpu()
                self.mean[k] = v.clone() if self.count == 1 else self.mean[k] + (v - self.mean[k]) / self.count

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean}

    def load_state_dict(self, state: dict) -> None:
        self.count, self.mean = state["count"], state["mean"]

    @torch.no_grad()
    def averaged_model(self, model: nn.Module, loader, device: torch.device,
                       memory_format: torch.memory_format = torch.contiguous_format) -> nn.Module:
        """A copy of ``model`` holding the mean weights, its BatchNorm statistics measured anew
        over one pass of ``loader`` (training batches, augmented as in training), in eval mode."""
        avg = copy.deepcopy(model)
        state = avg.state_dict()
        avg.load_state_dict({k: self.mean[k].to(state[k].dtype) if k in self.mean else v for k, v in state.items()})
        norms = batchnorm_layers(avg)
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative mean over the pass, not an exponential one
        avg.train()
        for x, _ in loader:
            avg(x.to(device, memory_format=memory_format))
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        return avg.eval()

"""benchmarks/onnx_teacher.py's unfolding without data: a network whose BatchNorms were folded
into its convolutions, as segrt's exports fold them, comes back computing the same thing."""

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from segrt.errors import SegrtError  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "onnx_teacher", Path(__file__).resolve().parents[1] / "benchmarks" / "onnx_teacher.py")
onnx_teacher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(onnx_teacher)


def small() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1, bias=False), torch.nn.BatchNorm2d(4),
                               torch.nn.ReLU(), torch.nn.Conv2d(4, 6, 1, bias=True), torch.nn.BatchNorm2d(6),
                               torch.nn.ReLU(), torch.nn.Conv2d(6, 2, 1))


def folded(net: torch.nn.Module) -> dict:
    """What an export keeps: each conv + BatchNorm as one conv (weight, bias ``weight_bias``)."""
    mods = list(net.named_modules())[1:]
    out = {}
    for (name, m), after in zip(mods, mods[1:] + [(None, None)], strict=True):
        if not isinstance(m, torch.nn.Conv2d):
            continue
        bias = m.bias.detach() if m.bias is not None else torch.zeros(m.out_channels)
        if isinstance(after[1], torch.nn.BatchNorm2d):
            bn = after[1]
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            out[f"{name}.weight"] = (m.weight.detach() * scale[:, None, None, None]).numpy()
            out[f"{name}.weight_bias"] = (bn.bias.detach() + (bias - bn.running_mean) * scale).numpy()
        else:
            out[f"{name}.weight"] = m.weight.detach().numpy()
            out[f"{name}.bias"] = bias.numpy()
    return out


def test_a_folded_network_comes_back_computing_the_same_in_eval_mode():
    torch.manual_seed(0)
    net = small()
    for bn in (net[1], net[4]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    x = torch.randn(2, 3, 8, 8)
    rebuilt = small().eval()
    assert onnx_teacher.unfold(rebuilt, folded(net)) == 2
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), net(x), atol=1e-5)
        assert not torch.allclose(small().eval()(x), net(x), atol=1e-2)  # a fresh one differs
    assert float(rebuilt[3].bias.detach().abs().max()) == 0  # the conv's own bias went into the folded one


def test_a_file_of_another_network_is_refused():
    weights = folded(small())
    del weights["3.weight"]
    with pytest.raises(SegrtError, match="no weight 3.weight"):
        onnx_teacher.unfold(small(), weights)
    weights = folded(small())
    weights["6.weight"] = weights["6.weight"][:1]
    with pytest.raises(SegrtError, match="6.weight: shape"):
        onnx_teacher.unfold(small(), weights)

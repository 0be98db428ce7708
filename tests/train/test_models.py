import pytest

torch = pytest.importorskip("torch")

from segrt.errors import SegrtError  # noqa: E402
from segrt.train.models import MODELS, build_model  # noqa: E402


@pytest.mark.parametrize("name", MODELS.names())
def test_forward_gives_logits_at_input_size(name):
    net = build_model(name, num_classes=11).eval()
    with torch.no_grad():
        y = net(torch.zeros(2, 3, 96, 128))
    assert y.shape == (2, 11, 96, 128)


@pytest.mark.parametrize("name", MODELS.names())
def test_backward_reaches_every_parameter(name):
    net = build_model(name, num_classes=11).train()
    net(torch.randn(2, 3, 64, 64)).mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(SegrtError, match="valid models: fastscnn"):
        build_model("segformer", num_classes=11)

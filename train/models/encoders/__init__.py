"""Encoders by name (segmentation_models.pytorch's ``get_encoder``): see :mod:`.base` for the contract.

>>> enc = get_encoder("efficientnet_lite0", pretrained="imagenet")   # doctest: +SKIP
>>> enc.out_channels, enc.strides                                    # doctest: +SKIP
((16, 24, 40, 112, 1280), (2, 4, 8, 16, 32))
"""

from __future__ import annotations

from segrt.registry import Registry

# name → "module:factory"; imported only when built, so listing names never imports torch
ENCODERS = Registry.table("encoder", "segrt.train.models.encoders", {
    **{name: f"resnet:{name}" for name in ("resnet18", "resnet34", "resnet50")},
    "mobilenetv2": "mobilenetv2:MobileNetV2", "vgg16_bn": "vgg:VGG16BN",
    **{f"efficientnet_lite{v}": f"efficientnet_lite:EfficientNetLite{v}" for v in (0, 1, 2)}})


def get_encoder(name: str, pretrained: str | None = None, **kwargs):
    """The encoder ``name`` built with ``kwargs`` (those left None are not passed: the
    encoder's defaults hold); ``pretrained``: a named weight set (``"imagenet"``), a local
    ``state_dict`` file, or a segrt checkpoint of a model with this encoder (its encoder's
    weights), loaded strictly. An option the encoder does not take is an error."""
    from segrt.errors import ModelError
    from segrt.registry import unknown_options

    factory = ENCODERS.load(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    unknown, accepted = unknown_options(factory, kwargs)
    if unknown:
        raise ModelError(f"encoder {name!r} takes no option {', '.join(map(repr, unknown))}; "
                         f"it takes: {', '.join(accepted) or 'none'}")
    encoder = factory(**kwargs)
    if pretrained:
        encoder.load_pretrained(pretrained)
    return encoder

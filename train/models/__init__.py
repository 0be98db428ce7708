"""Model registry: every architecture is built by name.

>>> from segrt.train.models import build_model           # doctest: +SKIP
>>> net = build_model("fastscnn", num_classes=11)         # doctest: +SKIP
"""

from __future__ import annotations

from segrt.registry import Registry

# name → "module:class"; modules are imported only when their model is built, so listing
# the names never imports torch.
MODELS = Registry.table("model", "segrt.train.models", {
    "fastscnn": "fastscnn:FastSCNN", "segnet": "segnet:SegNet", "fcn8s": "fcn:FCN8s", "unet": "unet:UNet",
    "unet_resnet34": "unet:UNetResNet", "deeplabv3plus": "deeplabv3plus:DeepLabV3Plus", "fpn": "fpn:SemanticFPN"})


def build_model(name: str, num_classes: int, **kwargs):
    """Model ``name``; an argument its constructor does not take is an error naming the valid ones."""
    from segrt.errors import ModelError
    from segrt.registry import unknown_options

    cls = MODELS.load(name)
    unknown, accepted = unknown_options(cls, kwargs, exclude=("num_classes",))
    if unknown:
        hint = " ('backbone' is now 'encoder')" if "backbone" in unknown and "encoder" in accepted else ""
        raise ModelError(f"model {name!r} takes no argument {', '.join(map(repr, unknown))}{hint}; "
                         f"it takes: {', '.join(accepted)}")
    return cls(num_classes=num_classes, **kwargs)

"""Checkpoint → ONNX with the argmax inside the graph, plus its manifest.

The exported graph maps float32 (N, 3, h, w) to uint8 (N, h, w) class indices: the engine
returns a label map, which cuts the device-to-host copy from C×h×w floats to h×w bytes.
This is the one runtime-package module that imports torch, and only when called.
"""

from __future__ import annotations

import datetime
import logging
import platform
import warnings
from pathlib import Path

import numpy as np

from segrt import __version__
from segrt.engines.manifest import ModelManifest, manifest_from_checkpoint
from segrt.files import sha256_file

OPSET = 18  # the dynamo exporter's native opset; TensorRT 10.3+ parses it
INPUT_NAME, OUTPUT_NAME = "image", "labels"


def export_onnx(checkpoint_path: str | Path, output: str | Path, opset: int = OPSET,
                name: str | None = None) -> ModelManifest:
    """Export ``checkpoint_path`` to ``output`` (.onnx) and write ``output``'s manifest.

    The graph has a dynamic batch axis and a fixed image size (the training input size).
    Returns the manifest. Nothing is written if the export fails.
    """
    import torch

    from segrt.train import checkpoint

    checkpoint_path, output = Path(checkpoint_path), Path(output)
    ckpt = checkpoint.load(checkpoint_path)
    net = checkpoint.build_from_checkpoint(ckpt)
    spec_dict = ckpt["preprocess"]

    class LabelMap(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x).argmax(1).to(torch.uint8)

    wrapper = LabelMap(net).eval()
    example = torch.zeros(1, 3, spec_dict["height"], spec_dict["width"])
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    # The exporter logs a warning per missing torchvision op; we use none of them.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():  # exporter-internal deprecation notices, not ours to fix
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (example,), str(tmp), dynamo=True, opset_version=opset, external_data=False,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("N", min=1, max=256)},), verbose=False)
    tmp.replace(output)

    manifest = manifest_from_checkpoint(
        ckpt, name or output.stem, sha256_file(checkpoint_path), sha256_file(output), opset,
        provenance={
            "trained_on": ckpt.get("trained_on"), "epoch": ckpt.get("epoch"),
            "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "segrt_version": __version__, "torch_version": torch.__version__,
            "python": platform.python_version()})
    manifest.save(output)
    return manifest


def parity(checkpoint_path: str | Path, onnx_path: str | Path, frames: list[np.ndarray]) -> float:
    """Fraction of pixels where ONNX Runtime's label map equals torch's, over BGR ``frames``."""
    import torch

    from segrt.engines.base import open_backend
    from segrt.preprocess import Preprocessor
    from segrt.train import checkpoint

    net = checkpoint.build_from_checkpoint(checkpoint.load(checkpoint_path))
    same = total = 0
    with open_backend(onnx_path) as backend, torch.no_grad():
        prep = Preprocessor(backend.manifest.preprocess)
        x = backend.input_buffer()
        for frame in frames:
            prep(frame, out=x[0])
            ours = backend.infer(x)
            ref = net(torch.from_numpy(x)).argmax(1).numpy()
            same += int((ours == ref).sum())
            total += ref.size
    return same / total

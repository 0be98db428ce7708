"""Checkpoint → ONNX with the argmax inside the graph, plus its manifest.

The exported graph maps float32 (N, 3, h, w) to uint8 (N, h, w) class indices: the engine
returns a label map, which cuts the device-to-host copy from C×h×w floats to h×w bytes.
This is the one runtime-package module that imports torch, and only when called.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import platform
import warnings
from pathlib import Path

import numpy as np

from segrt import __version__
from segrt.engines.manifest import ModelManifest, manifest_from_checkpoint
from segrt.errors import ModelError
from segrt.files import sha256_file

OPSET = 18  # the dynamo exporter's native opset; TensorRT 10.3+ parses it
INPUT_NAME, OUTPUT_NAME = "image", "labels"


def export_onnx(checkpoint_path: str | Path, output: str | Path, opset: int = OPSET,
                name: str | None = None, dynamic: bool = False,
                check_frames: list[np.ndarray] | None = None, min_agreement: float = 0.995) -> ModelManifest:
    """Export ``checkpoint_path`` to ``output`` (.onnx) and write ``output``'s manifest.

    By default every shape is fixed (batch 1, the training input size): what TensorRT builds
    fastest. ``dynamic=True`` makes batch, height and width free (height and width in steps
    of 32). The graph passes the ONNX checker and shape inference; with ``check_frames`` its
    label maps must agree with torch's on at least ``min_agreement`` of the pixels. Nothing
    is written at ``output`` unless all of that holds.
    """
    import onnx
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
    tmp = output.with_name(output.stem + ".partial.onnx")
    dims = None
    if dynamic:
        h32, w32 = torch.export.Dim("h32", min=2, max=128), torch.export.Dim("w32", min=2, max=128)
        dims = ({0: torch.export.Dim("N", min=1, max=256), 2: 32 * h32, 3: 32 * w32},)
    # The exporter logs a warning per missing torchvision op; we use none of them.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # exporter-internal deprecation notices, not ours to fix
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, (example,), str(tmp), dynamo=True, opset_version=opset, external_data=False,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=dims, verbose=False)
        model = onnx.load(str(tmp))
        onnx.checker.check_model(model, full_check=True)
        onnx.save(onnx.shape_inference.infer_shapes(model, strict_mode=True), str(tmp))
    except Exception:
        tmp.unlink(missing_ok=True)
        raise

    manifest = manifest_from_checkpoint(
        ckpt, name or output.stem, sha256_file(checkpoint_path), sha256_file(tmp), opset,
        provenance={
            "trained_on": ckpt.get("trained_on"), "epoch": ckpt.get("epoch"), "dynamic_axes": dynamic,
            "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "segrt_version": __version__, "torch_version": torch.__version__,
            "python": platform.python_version()})
    if check_frames:
        agree = parity(net, tmp, manifest, check_frames)
        manifest = dataclasses.replace(manifest, provenance={
            **manifest.provenance, "parity": {"agreement": round(agree, 6), "frames": len(check_frames)}})
        if agree < min_agreement:
            tmp.unlink(missing_ok=True)
            raise ModelError(f"{output}: ONNX Runtime and torch agree on only {agree:.3%} of pixels "
                             f"(need {min_agreement:.1%}); not written. Report the model and opset as a bug, "
                             "or try another --opset")
    tmp.replace(output)
    manifest.save(output)
    return manifest


def parity(net, onnx_path: str | Path, manifest: ModelManifest, frames: list[np.ndarray]) -> float:
    """Fraction of pixels where ONNX Runtime's label map equals torch's, over BGR ``frames``."""
    import torch

    from segrt.engines.onnxruntime_backend import OnnxRuntimeBackend
    from segrt.preprocess import Preprocessor

    net.eval()
    same = total = 0
    with OnnxRuntimeBackend(Path(onnx_path), manifest) as backend, torch.no_grad():
        prep = Preprocessor(manifest.preprocess)
        x = backend.input_buffer()
        for frame in frames:
            prep(frame, out=x[0])
            ours = backend.infer(x)
            ref = net(torch.from_numpy(x)).argmax(1).numpy()
            same += int((ours == ref).sum())
            total += ref.size
    return same / total

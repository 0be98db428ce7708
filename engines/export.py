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
from segrt.files import PendingOutput, sha256_file
from segrt.signals import deferred_signals

OPSET = 18  # the dynamo exporter's native opset; TensorRT 10.3+ parses it
INPUT_NAME, OUTPUT_NAME = "image", "labels"


def export_onnx(checkpoint_path: str | Path, output: str | Path, opset: int = OPSET,
                name: str | None = None, dynamic: bool = False,
                check_frames: list[np.ndarray] | None = None, min_agreement: float = 0.995,
                fp16_storage: bool = False, size: tuple[int, int] | None = None,
                tta: str | None = None) -> ModelManifest:
    """Export ``checkpoint_path`` to ``output`` (.onnx) and write ``output``'s manifest.

    By default every shape is fixed (batch 1, the training input size): what TensorRT builds
    fastest. ``dynamic=True`` makes batch, height and width free (height and width in steps
    of 32). The graph passes the ONNX checker and shape inference; with ``check_frames`` its
    label maps must agree with torch's on at least ``min_agreement`` of the pixels. Nothing
    is written at ``output`` unless all of that holds.

    ``size`` (width, height; multiples of 32) exports for another input size than the
    training one: a smaller one trades accuracy for speed. The checkpoint's val metrics
    do not carry over (the manifest has none; ``segrt eval`` measures the export).

    ``tta="flip"`` puts flip test-time augmentation into the graph (twice the compute; the
    manifest's provenance says so); ``tta="flip-ms"`` flips at three scales (about 6.3x).
    """
    import torch

    from segrt.train import checkpoint

    checkpoint_path, output = Path(checkpoint_path), Path(output)
    ckpt = checkpoint.load(checkpoint_path)
    net, ckpt, trained_size = _export_net(ckpt, size, tta, dynamic)
    pending = PendingOutput(output, "ONNX model", parents=True)
    try:
        graph_opset = _write_graph(net, ckpt["preprocess"], pending.tmp, opset, dynamic, fp16_storage)
    except BaseException:
        pending.discard()
        raise
    manifest = manifest_from_checkpoint(
        ckpt, name or output.stem, sha256_file(checkpoint_path), sha256_file(pending.tmp), graph_opset,
        provenance={
            "trained_on": ckpt.get("trained_on"), "epoch": ckpt.get("epoch"), "dynamic_axes": dynamic,
            "trained_input_size": list(trained_size),
            "weights_stored_as": "fp16 (fp32 compute)" if fp16_storage else "fp32",
            "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **({"tta": tta} if tta else {}),
            "segrt_version": __version__, "torch_version": torch.__version__,
            "python": platform.python_version()})
    try:
        if check_frames:
            agree = parity(net, pending.tmp, manifest, check_frames)
            manifest = dataclasses.replace(manifest, provenance={
                **manifest.provenance, "parity": {"agreement": round(agree, 6), "frames": len(check_frames)}})
            if agree < min_agreement:
                raise ModelError(f"{output}: ONNX Runtime and torch agree on only {agree:.3%} of pixels "
                                 f"(need {min_agreement:.1%}); not written. Report the model and opset as a bug, "
                                 "or try another --opset")
    except BaseException:
        pending.discard()
        raise
    pending.commit()
    manifest.save(output)
    return manifest


def _export_net(ckpt: dict, size: tuple[int, int] | None, tta: str | None, dynamic: bool):
    """(the network to export, the checkpoint with the export's input size, the trained size):
    the checkpoint's model, wrapped in test-time augmentation if asked."""
    from segrt.train import checkpoint

    net = checkpoint.build_from_checkpoint(ckpt)
    trained_size = (ckpt["preprocess"]["width"], ckpt["preprocess"]["height"])
    if size is not None and tuple(size) != trained_size:
        if min(size) <= 0 or size[0] % 32 or size[1] % 32:
            raise ModelError(f"export size {size[0]}x{size[1]}: width and height must be positive multiples of 32")
        ckpt = {**ckpt, "preprocess": {**ckpt["preprocess"], "width": size[0], "height": size[1]}, "metrics": None}
    if tta is not None:
        from segrt.train.models import tta as tta_mod

        if tta not in tta_mod.TTA_MODES:
            raise ModelError(f"--tta {tta!r}: unknown; valid: {', '.join(tta_mod.TTA_MODES)}")
        if tta == "flip-ms" and dynamic:
            raise ModelError("--tta flip-ms fixes its scales when exported; drop --dynamic or use --tta flip")
        net = tta_mod.wrap(net, tta, ckpt["preprocess"]["width"], ckpt["preprocess"]["height"]).eval()
    return net, ckpt, trained_size


def _write_graph(net, spec: dict, path: Path, opset: int, dynamic: bool, fp16_storage: bool) -> int:
    """``net`` with argmax in the graph (a uint8 label map out) as ONNX at ``path``, checked by
    the ONNX checker and strict shape inference; returns the graph's opset."""
    import onnx
    import torch

    class LabelMap(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x).argmax(1).to(torch.uint8)

    example = torch.zeros(1, 3, spec["height"], spec["width"])
    dims = None
    if dynamic:
        h32, w32 = torch.export.Dim("h32", min=2, max=128), torch.export.Dim("w32", min=2, max=128)
        dims = ({0: torch.export.Dim("N", min=1, max=256), 2: 32 * h32, 3: 32 * w32},)
    # The exporter logs a warning per missing torchvision op; we use none of them.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    # a signal's exception inside the exporter's C++ aborts the process: held until it returns
    with warnings.catch_warnings(), deferred_signals():  # (and the exporter's deprecation notices)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LabelMap(net).eval(), (example,), str(path), dynamo=True, opset_version=opset, external_data=False,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=dims, verbose=False)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    for node in model.graph.node:  # the exporter's per-node source stack traces: ~3 % of a
        del node.metadata_props[:]  # small model's file, read by no runtime
    if fp16_storage:
        model, _ = store_weights_fp16(model)
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)


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


STORAGE_SUFFIX = "__fp16"


def store_weights_fp16(model):
    """FP16 storage, FP32 compute: float32 weights are stored as float16 and cast back by a Cast
    node that ONNX Runtime and TensorRT fold when they load the graph. Halves the file. The
    exporter folds BatchNorm into the convolutions, so the stored weights are those products
    rounded to FP16 (relative error ≤ 2^-11); export's parity check and the manifest's
    metrics show what that costs (nothing measurable on the shipped model)."""
    import onnx
    from onnx import numpy_helper

    g = model.graph
    casts, converted = [], 0
    for init in g.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        w = numpy_helper.to_array(init)
        if w.size < 16:
            continue
        if not np.isfinite(w).all() or np.abs(w).max() >= 65504:  # outside FP16's range: keep FP32
            continue
        half = w.astype(np.float16)
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, name + STORAGE_SUFFIX))
        casts.append(onnx.helper.make_node("Cast", [name + STORAGE_SUFFIX], [name], to=onnx.TensorProto.FLOAT,
                                           name=f"storage_cast_{converted}"))
        converted += 1
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    return model, converted


def fold_fp16_storage(model):
    """The inverse of :func:`store_weights_fp16`: plain float32 initializers again (what
    quantizers expect to find in front of a Conv)."""
    import onnx
    from onnx import numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    keep = []
    for node in g.node:
        src = inits.get(node.input[0]) if node.op_type == "Cast" and node.input else None
        if src is not None and node.input[0].endswith(STORAGE_SUFFIX) and src.data_type == onnx.TensorProto.FLOAT16:
            src.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(src).astype(np.float32), node.output[0]))
            continue
        keep.append(node)
    del g.node[:]
    g.node.extend(keep)
    return model

"""A distillation teacher from a shipped ONNX file whose checkpoint was not shipped.

segrt's exports fold every BatchNorm into the convolution before it and may store the
weights in FP16. This puts those folded weights back into the network of a checkpoint of the
same architecture (``--like``: its model, model arguments and key names; none of its weights
are kept): each convolution takes the folded weight, and the BatchNorm after it becomes the
identity plus the folded bias (running mean 0, running variance 1 - eps, scale 1). In eval
mode that is the exported network exactly; in train mode it is not (BatchNorm would
normalise by batch statistics), so the checkpoint is marked ``eval_only`` and a recipe may
use it as ``distill_from`` but not as ``init_from``.

    python3 benchmarks/onnx_teacher.py segrt/zoo/fpn_lite0_robust_camvid.onnx \\
        --like segrt/zoo/fpn_lite0_camvid.pt -o runs/teacher/fpn_lite0_robust_camvid.pt

Written only after its labels agree with ONNX Runtime's on CamVid val frames (``--frames``,
at least 99.5 % of pixels; an export's in-graph test-time flip is applied to the rebuilt
network for this check only: as a teacher, ``distill_flip`` does it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from segrt.errors import SegrtError
from segrt.files import shown
from segrt.train import checkpoint

PREFIXES = ("net.net.", "net.")
MIN_AGREEMENT = 0.995


def onnx_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every initializer as float32, under its parameter name: the FP16-storage suffix
    ``__fp16`` and the export wrapper's ``net.``/``net.net.`` prefix removed."""
    out = {}
    for init in model.graph.initializer:
        name = init.name.removesuffix("__fp16")
        for p in PREFIXES:
            if name.startswith(p):
                name = name[len(p):]
                break
        out[name] = numpy_helper.to_array(init).astype(np.float32)
    return out


def unfold(net: torch.nn.Module, weights: dict[str, np.ndarray]) -> int:
    """Load folded conv weights into ``net``; each BatchNorm registered right after a
    convolution becomes the identity plus that convolution's folded bias (the convolution's
    own bias, if any, zero). Conv/BatchNorm pairs are matched by registration order, not by
    the graph: the agreement check is what proves the pairing. Any other parameter is taken
    under its own name. Returns the number of folded pairs."""
    state: dict[str, torch.Tensor] = {}
    folded = 0
    modules = list(net.named_modules())
    for i, (name, m) in enumerate(modules):
        if not isinstance(m, torch.nn.Conv2d):
            continue
        key = f"{name}.weight"
        if key not in weights:
            raise SegrtError(f"the ONNX file has no weight {key}: it is not this architecture; give --like a "
                             "checkpoint of the model the ONNX was exported from")
        state[key] = torch.from_numpy(weights[key])
        bias = weights.get(f"{key}_bias", weights.get(f"{name}.bias"))
        after = modules[i + 1] if i + 1 < len(modules) else None
        if after is not None and isinstance(after[1], torch.nn.BatchNorm2d) and after[1].track_running_stats:
            bn_name, bn = after
            if bias is None:
                raise SegrtError(f"{key}: no folded bias in the ONNX file; was it exported by segrt?")
            state[f"{bn_name}.weight"] = torch.ones_like(bn.weight)
            state[f"{bn_name}.bias"] = torch.from_numpy(bias)
            state[f"{bn_name}.running_mean"] = torch.zeros_like(bn.running_mean)
            state[f"{bn_name}.running_var"] = torch.full_like(bn.running_var, 1.0 - bn.eps)
            if m.bias is not None:
                state[f"{name}.bias"] = torch.zeros_like(m.bias)
            folded += 1
        elif m.bias is not None and bias is not None:
            state[f"{name}.bias"] = torch.from_numpy(bias)
    own = net.state_dict()
    for k in own:  # what no conv took: Linear, a BatchNorm after no conv, ...
        if k not in state and k in weights:
            state[k] = torch.from_numpy(weights[k])
    missing = [k for k, v in own.items() if k not in state and v.is_floating_point()]
    if missing:
        raise SegrtError(f"the ONNX file does not cover {len(missing)} parameters of --like's network "
                         f"({', '.join(missing[:3])}, …); it is not this architecture")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise SegrtError(f"{k}: shape {tuple(v.shape)} in the ONNX file, {tuple(own[k].shape)} in --like's "
                             "network; give a checkpoint with the same model arguments")
        if not torch.isfinite(v).all():
            raise SegrtError(f"{k}: holds values that are not finite in the ONNX file; nothing written")
    net.load_state_dict(state, strict=False)
    return folded


def agreement(net: torch.nn.Module, onnx_path: Path, frames: int, data_root: str | None, flip: bool) -> float:
    """Share of pixels on which the rebuilt network's argmax equals the ONNX file's labels
    (``flip``: its probabilities averaged with its mirror's, as an export with ``--tta flip``)."""
    from segrt.datasets import open_dataset
    from segrt.preprocess import Preprocessor
    from segrt.realtime.api import Segmenter
    from segrt.train.models.tta import FlipAverage

    ds = open_dataset("camvid", data_root, "val")
    model = FlipAverage(net) if flip else net  # the export's own flip averaging
    same = total = 0
    net.eval()
    with Segmenter(onnx_path) as seg, torch.no_grad():
        backend = seg.backend
        prep = Preprocessor(backend.manifest.preprocess)
        for i in np.linspace(0, len(ds) - 1, frames).round().astype(int):
            image, _ = ds.read(int(i))
            x = prep(image)[None]
            ours = model(torch.from_numpy(x)).argmax(1)[0].numpy()
            theirs = backend.infer(x)[0]
            if theirs.shape != ours.shape:
                raise SegrtError(f"{onnx_path}: labels {theirs.shape} against the network's {ours.shape}")
            same += int((ours == theirs).sum())
            total += ours.size
    return same / total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("onnx_file", type=Path)
    ap.add_argument("--like", type=Path, required=True,
                    help="a checkpoint of the same architecture and model arguments (its weights are not used)")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=8, help="CamVid val frames for the agreement check")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)
    try:
        if args.frames < 1:
            raise SegrtError(f"--frames {args.frames}: the agreement check needs at least 1 frame; use e.g. 8")
        if args.output.exists():
            raise SegrtError(f"-o {shown(args.output)}: exists; give a new file name")
        manifest_path = args.onnx_file.with_suffix(".json")
        if not manifest_path.is_file():
            raise SegrtError(f"{shown(manifest_path)}: no manifest beside {shown(args.onnx_file)}; "
                             "give a segrt export")
        manifest = json.loads(manifest_path.read_text())
        like = checkpoint.load(args.like)
        if manifest.get("architecture") != like["model"]:
            raise SegrtError(f"--like {shown(args.like)}: a {like['model']}, the ONNX file a "
                             f"{manifest.get('architecture')}; give a checkpoint of its architecture")
        if manifest.get("classes") != list(like["classes"]):
            raise SegrtError(f"--like {shown(args.like)}: predicts other classes than the ONNX file; give a "
                             "checkpoint of the same classes")
        net = checkpoint.build_from_checkpoint(like)
        folded = unfold(net, onnx_weights(onnx.load(str(args.onnx_file))))
        tta = manifest.get("provenance", {}).get("tta")
        if tta not in (None, "none", "flip"):
            raise SegrtError(f"{shown(args.onnx_file)}: exported with --tta {tta}; only none or flip can be checked")
        agree = agreement(net, args.onnx_file, args.frames, args.data_root, flip=tta == "flip")
        if agree < MIN_AGREEMENT:
            raise SegrtError(f"{shown(args.onnx_file)}: the rebuilt network agrees with ONNX Runtime on "
                             f"{100 * agree:.2f} % of pixels (< {100 * MIN_AGREEMENT:.1f} %); nothing written")
        # the network that was checked, as it is (FP32: no rounding after the check)
        payload = {k: like[k] for k in ("model", "model_args") if k in like}
        payload.update(
            preprocess=manifest["preprocess"], classes=manifest["classes"], palette=manifest.get("palette"),
            state_dict=net.state_dict(),
            eval_only="BatchNorm folded into the convolutions: a teacher (distill_from), not a start (init_from)",
            weights_from={"onnx": str(args.onnx_file),
                          "sha256": hashlib.sha256(args.onnx_file.read_bytes()).hexdigest(),
                          "agreement_on_camvid_val": round(agree, 5), "frames": args.frames},
            trained_on=manifest.get("provenance", {}).get("trained_on"),
        )
        args.output.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.save(args.output, payload)
    except SegrtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: {folded} BatchNorms unfolded; agrees with {args.onnx_file.name} on "
          f"{100 * agree:.3f} % of pixels ({args.frames} CamVid val frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

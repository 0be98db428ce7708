"""Make a shipped zoo ONNX file from a checkpoint: export it (FP16-stored weights, or INT8
through the accuracy gate) at a chosen input size, score it through ONNX Runtime on CamVid
val, record that figure in its manifest (``metrics.val_miou_onnxruntime``, what ``segrt
models`` and docs/zoo.md show) and move both files into ``segrt/zoo/``.

    python benchmarks/ship_onnx.py segrt/zoo/fpn_lite0_camvid.pt --size 608x448 \\
        --data-root ../shared/datasets/camvid
    python benchmarks/ship_onnx.py runs/zoo_cpu/x/best.pt --name x_camvid --size 608x448 --int8 …

The result (command, sizes, val mIoU, machine) goes to ``benchmarks/results/ship_NAME.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from segrt import envinfo
from segrt.engines.manifest import load_manifest
from segrt.files import manifest_path, write_text_atomic

REPO = Path(__file__).resolve().parents[1]


def segrt(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "segrt", *args], check=True)


def make(args: argparse.Namespace, checkpoint: Path, stem: Path) -> Path:
    """``checkpoint`` exported (FP16-stored unless asked) and, with --int8, quantized through the
    gate: ``stem``.onnx or ``stem``.int8.onnx."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    onnx = stem.with_name(stem.name + ".onnx")
    segrt("export", str(checkpoint), "--size", args.size, *([] if args.fp32_storage else ["--fp16-storage"]),
          *(["--tta", args.tta] if args.tta else []), "-o", str(onnx), "--data-root", str(args.data_root))
    if not args.int8:
        return onnx
    quantized = stem.with_name(stem.name + ".int8.onnx")
    segrt("quantize", str(onnx), "--precision", "int8", "-o", str(quantized), "--data-root",
          str(args.data_root), *(a for node in args.exclude for a in ("--exclude", node)))
    return quantized


def val_miou(args: argparse.Namespace, onnx: Path) -> float:
    report = onnx.with_name(onnx.name + ".eval.json")
    segrt("eval", str(onnx), "--data-root", str(args.data_root), "--report", str(report))
    return next(iter(json.loads(report.read_text())["results"].values()))["miou"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--name", help="shipped name [default: the checkpoint's stem]")
    ap.add_argument("--size", required=True, metavar="WxH")
    ap.add_argument("--int8", action="store_true", help="ship the INT8 file (ONNX Runtime QDQ, gate-checked)")
    ap.add_argument("--exclude", action="append", default=[], help="with --int8: a node kept in FP32 (repeatable)")
    ap.add_argument("--tta", choices=["flip", "flip-ms"],
                    help="test-time augmentation in the graph (segrt export --tta)")
    ap.add_argument("--fp32-storage", action="store_true", help="store FP32 weights (default: FP16-stored)")
    ap.add_argument("--twin", type=Path, metavar="CKPT",
                    help="for a checkpoint trained on train+val: its train-only twin, made the same way, "
                         "gives the val figure recorded")
    ap.add_argument("--data-root", required=True, type=Path)
    ap.add_argument("--zoo", type=Path, default=REPO / "segrt" / "zoo")
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results",
                    help="folder for ship_NAME.json [default: benchmarks/results; give another for a candidate]")
    args = ap.parse_args()
    name = args.name or args.checkpoint.stem
    with tempfile.TemporaryDirectory(dir=args.zoo.parent) as tmp:
        onnx = make(args, args.checkpoint, Path(tmp) / name)
        miou = val_miou(args, onnx)
        if args.twin:  # trained on val too: the figure is its train-only twin's, made the same way
            own, miou = miou, val_miou(args, make(args, args.twin, Path(tmp) / "twin" / name))
            print(f"val mIoU {100 * own:.2f} of the train+val weights (frames they trained on), "
                  f"{100 * miou:.2f} of the train-only twin: the figure recorded")
        manifest = load_manifest(onnx)
        replace(manifest, metrics={**manifest.metrics, "val_miou_onnxruntime": miou,
                                   **({"val_miou_of": "train-only twin " + str(args.twin)} if args.twin else {})}
                ).save(onnx)
        for src in (onnx, manifest_path(onnx)):
            shutil.move(src, args.zoo / src.name)
    doc = {"what": f"shipped {onnx.name}: {args.size}, {'INT8' if args.int8 else 'FP16-stored FP32'}"
                   + (f", {args.tta} TTA in the graph" if args.tta else ""),
           "command": "python3 benchmarks/ship_onnx.py " + " ".join(sys.argv[1:]),
           "checkpoint": str(args.checkpoint), **({"twin": str(args.twin)} if args.twin else {}),
           "size": args.size, "val_miou_onnxruntime": miou,
           "model_mb": round((args.zoo / onnx.name).stat().st_size / 1e6, 2), **envinfo.provenance()}
    out = args.results / f"ship_{onnx.stem}.json"
    write_text_atomic(out, json.dumps(doc, indent=2) + "\n", "result")
    print(f"{args.zoo / onnx.name}: val mIoU {100 * miou:.2f} through ONNX Runtime; wrote {out}")


if __name__ == "__main__":
    main()

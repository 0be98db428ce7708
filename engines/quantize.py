"""FP32 ONNX → FP16 or INT8 ONNX, behind an accuracy gate.

Precision lives in the graph: FP16 types, or explicit QuantizeLinear/DequantizeLinear (Q/DQ)
pairs. TensorRT 10 and 11 build strongly typed engines from these files; ONNX Runtime runs
the same files on CPU, which is how every one of them is scored here.

- FP16: ModelOpt AutoCast when installed, else onnxconverter-common with Resize taken off
  its block list (Resize runs fine in FP16 on TensorRT). Inputs and outputs stay as they were.
- INT8, ``target="tensorrt"``: ModelOpt ONNX PTQ, which places Q/DQ on Conv/Resize inputs the
  way TensorRT fuses them and never quantizes a bias. ONNX Runtime cannot fuse that pattern,
  so these files are slow on CPU; they exist to be built by TensorRT.
- INT8, ``target="onnxruntime"``: ONNX Runtime's static quantization (QDQ, per-channel
  symmetric INT8 weights, UINT8 activations, INT32 bias) which its CPU kernels fuse into
  QLinearConv.

The gate scores the candidate and the FP32 model on the same validation frames and refuses a
candidate that loses more than ``threshold`` mIoU points, unless forced. ``auto`` keeps the
layers that quantize worst (ranked by the error each adds, measured on calibration frames) in
higher precision, doubling their number until the gate passes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from segrt.checks import check_paths
from segrt.engines.manifest import ModelManifest, load_verified_manifest
from segrt.engines.sensitivity import QDQ_OPS, layer_sensitivity
from segrt.errors import ModelError, SegrtError
from segrt.files import atomic_output, sha256_file

TARGETS = ("onnxruntime", "tensorrt")
# ONNX Runtime's CPU kernels have no FP16 ArgMax; onnxconverter-common's list blocks Resize,
# which TensorRT runs well in FP16, so it is taken off.
FP16_BLOCK_EXTRA = ("ArgMax",)
# ONNX Runtime's WeightBiasQuantization pass mis-handles ModelOpt's FP16-scale Q/DQ graphs
ORT_DISABLE_FOR_TENSORRT_QDQ = ("WeightBiasQuantization",)


@dataclass(frozen=True)
class Exclusions:
    nodes: tuple[str, ...] = ()
    op_types: tuple[str, ...] = ()

    def plus(self, nodes: list[str]) -> "Exclusions":
        return Exclusions(tuple(dict.fromkeys(self.nodes + tuple(nodes))), self.op_types)


@dataclass
class GateResult:
    reference_miou: float
    miou: float
    per_class_delta: dict[str, float]   # points, candidate minus FP32
    threshold: float
    passed: bool
    forced: bool = False
    frames: int | None = None           # the val frames it was scored on (the metrics' own count)

    @property
    def delta(self) -> float:
        return 100 * (self.miou - self.reference_miou)

    def to_dict(self) -> dict:
        return {"reference_miou": self.reference_miou, "miou": self.miou, "delta_points": round(self.delta, 3),
                "per_class_delta_points": {k: round(v, 3) for k, v in self.per_class_delta.items()},
                "threshold_points": self.threshold, "passed": self.passed, "forced": self.forced,
                "frames": self.frames}


@dataclass
class QuantizeResult:
    output: Path | None
    manifest: ModelManifest | None
    gate: GateResult
    exclusions: Exclusions
    attempts: list[dict] = field(default_factory=list)


def graph_nodes(path: str | Path) -> list[onnx.NodeProto]:
    return list(onnx.load(str(path), load_external_data=False).graph.node)


def resolve_exclusions(path: str | Path, items: tuple[str, ...] | list[str]) -> Exclusions:
    """``--exclude`` items → node names and op types of the graph at ``path``.

    An item that is an op type in the graph (``Resize``) excludes that type; anything else is a
    regular expression that must match at least one node name in full.
    """
    nodes = graph_nodes(path)
    op_types = {n.op_type for n in nodes}
    names, types = [], []
    for item in items:
        if item in op_types:
            types.append(item)
            continue
        try:
            pattern = re.compile(item)
        except re.error as exc:
            raise SegrtError(f"--exclude {item!r}: not an op type and not a valid regular expression ({exc})") from None
        hits = [n.name for n in nodes if n.name and pattern.fullmatch(n.name)]
        if not hits:
            examples = ", ".join(n.name for n in nodes if n.op_type == "Conv")[:120]
            raise SegrtError(f"--exclude {item!r} matches no node name or op type; op types: "
                             f"{', '.join(sorted(op_types))}; node names look like: {examples}…")
        names += hits
    return Exclusions(tuple(dict.fromkeys(names)), tuple(dict.fromkeys(types)))


@contextlib.contextmanager
def _quiet():
    """ONNX Runtime's quantizer prints notices to stdout/stderr; keep segrt's own output."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def modelopt_version() -> str | None:
    """The installed ModelOpt's version, found without importing it (its import patches
    ONNX Runtime's quantization in the importing process)."""
    from importlib import metadata

    try:
        return metadata.version("nvidia-modelopt")
    except metadata.PackageNotFoundError:
        return None


def _modelopt(module: str, args: list[str]) -> None:
    """Runs a ModelOpt command line in its own process: ModelOpt patches ONNX Runtime when it
    is imported, which breaks ONNX Runtime's own quantizer later in the same process."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise SegrtError(f"ModelOpt ({module}) failed: {lines[-1] if lines else 'no output'}; "
                         "re-run with --exclude for the layer it names, or report the model")


def _anchored(names: tuple[str, ...]) -> list[str]:
    """Exact node names as the regular expressions ModelOpt expects."""
    return [f"^{re.escape(n)}$" for n in names]


def to_fp16(src: Path, dst: Path, exclusions: Exclusions = Exclusions()) -> str:
    """FP16 graph with the original input and output types. Returns the tool used."""
    version = modelopt_version()
    if version is None:
        from onnxconverter_common import __version__ as occ_version
        from onnxconverter_common.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

        block = [op for op in DEFAULT_OP_BLOCK_LIST if op != "Resize"]
        block += [*FP16_BLOCK_EXTRA, *exclusions.op_types]
        model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True, op_block_list=block,
                                         node_block_list=list(exclusions.nodes))
        onnx.save(model, str(dst))
        return f"onnxconverter-common {occ_version}"
    args = ["--onnx_path", str(src), "--output_path", str(dst), "--low_precision_type", "fp16",
            "--keep_io_types", "--log_level", "ERROR",
            "--op_types_to_exclude", *FP16_BLOCK_EXTRA, *exclusions.op_types]
    if exclusions.nodes:
        args += ["--nodes_to_exclude", *_anchored(exclusions.nodes)]
    _modelopt("modelopt.onnx.autocast", args)
    return f"modelopt {version} autocast"


def _prepare_for_ort(src: Path, dst: Path) -> None:
    """Shape inference and graph optimisation before ONNX Runtime quantization (its advice)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with _quiet():
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)


def int8_onnxruntime(prepared: Path, dst: Path, data: np.ndarray, input_name: str,
                     exclusions: Exclusions) -> str:
    """INT8 QDQ that ONNX Runtime's CPU kernels fuse. ``prepared`` comes from
    :func:`_prepare_for_ort`. Returns the tool used."""
    import onnxruntime
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.frames = iter(data)

        def get_next(self):
            x = next(self.frames, None)
            return None if x is None else {input_name: x[None]}

    present = {n.op_type for n in graph_nodes(prepared)}
    ops = sorted(present - set(exclusions.op_types) - set(QDQ_OPS) - {"ArgMax", "Cast"})
    with _quiet():
        quantize_static(
            str(prepared), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=ops,
            nodes_to_exclude=list(exclusions.nodes),
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
    return f"onnxruntime {onnxruntime.__version__} quantize_static"


def int8_tensorrt(src: Path, dst: Path, data: np.ndarray, input_name: str, exclusions: Exclusions) -> str:
    """INT8 Q/DQ placed the way TensorRT fuses it (ModelOpt ONNX PTQ, entropy calibration,
    FP16 elsewhere). Returns the tool used."""
    version = modelopt_version()
    if version is None:
        raise SegrtError("INT8 for TensorRT needs NVIDIA ModelOpt: pip install -e '.[quantize]' "
                         "(or --target onnxruntime for ONNX Runtime on CPU)")
    calib = dst.with_name(dst.stem + ".calib.npz")
    np.savez(calib, **{input_name: data})
    args = ["--onnx_path", str(src), "--output_path", str(dst), "--quantize_mode", "int8",
            "--calibration_data_path", str(calib), "--calibration_method", "entropy",
            "--calibration_eps", "cpu", "--log_level", "ERROR"]
    if exclusions.nodes:
        args += ["--nodes_to_exclude", *_anchored(exclusions.nodes)]
    if exclusions.op_types:
        args += ["--op_types_to_exclude", *exclusions.op_types]
    try:
        _modelopt("modelopt.onnx.quantization", args)
    finally:
        calib.unlink(missing_ok=True)
    return f"modelopt {version} onnx ptq"


# -- the gate ---------------------------------------------------------------------------------

def compare_metrics(reference: dict, candidate: dict, threshold: float) -> GateResult:
    """Gate verdict: ``threshold`` is in mIoU points (1.0 = one percentage point)."""
    per_class = {c: 100 * (b - a) for c, a, b in
                 zip(reference["classes"], reference["per_class_iou"], candidate["per_class_iou"], strict=True)}
    drop = 100 * (reference["miou"] - candidate["miou"])
    return GateResult(reference["miou"], candidate["miou"], per_class, threshold, passed=drop <= threshold,
                      frames=candidate.get("frames"))


def format_gate(g: GateResult, name: str) -> str:
    rows = [f"{'class':<14}{'FP32→' + name:>14}"]
    rows += [f"{c:<14}{d:>+14.2f}" for c, d in g.per_class_delta.items()]
    verdict = "passes" if g.passed else "FAILS"
    rows.append(f"mIoU {100 * g.reference_miou:.2f} → {100 * g.miou:.2f} ({g.delta:+.2f} points): "
                f"{verdict} the gate (max loss {g.threshold:.2f})")
    return "\n".join(rows)


# -- orchestration ------------------------------------------------------------------------------

def _make_candidate(model: Path, base, source: Path, candidate: Path, opts: QuantizeOptions, exclusions,
                    calibration: tuple[np.ndarray, dict] | None, disabled: tuple[str, ...]):
    """One quantized candidate of ``source`` at ``candidate``, with its manifest; returns it."""
    if opts.precision == "fp16":
        tool = to_fp16(source, candidate, exclusions)
    elif opts.target == "onnxruntime":
        tool = int8_onnxruntime(source, candidate, calibration[0], base.input_name, exclusions)
    else:
        tool = int8_tensorrt(source, candidate, calibration[0], base.input_name, exclusions)
    manifest = dataclasses.replace(
        base, precision=opts.precision, model_sha256=sha256_file(candidate),
        quantization={"target": opts.target, "tool": tool, "base_model": model.name,
                      "base_model_sha256": base.model_sha256,
                      "calibration": calibration[1] if calibration and opts.precision == "int8" else None,
                      "excluded_nodes": list(exclusions.nodes), "excluded_op_types": list(exclusions.op_types),
                      "ort_disabled_optimizers": list(disabled)})
    manifest.save(candidate)
    return manifest


def default_output(model: Path, precision: str, target: str) -> Path:
    tag = "fp16" if precision == "fp16" else ("int8" if target == "onnxruntime" else "int8-trt")
    return model.with_name(f"{model.stem}.{tag}.onnx")


@dataclasses.dataclass(frozen=True)
class QuantizeOptions:
    """What ``segrt quantize`` asks of :func:`quantize_model`."""

    precision: str                 # fp16 or int8
    target: str = "onnxruntime"    # or tensorrt (Q/DQ placed as TensorRT wants)
    output: Path | None = None     # default: MODEL.fp16.onnx, MODEL.int8.onnx, MODEL.int8-trt.onnx
    exclude: tuple[str, ...] = ()  # node names or op types kept in higher precision
    threshold: float = 1.0         # the most val mIoU (points) the gate lets go
    force: bool = False            # write it even when it fails the gate (the manifest says so)
    auto: bool = False             # INT8: keep the most sensitive layers in FP32 until the gate passes


def quantize_model(model: Path, opts: QuantizeOptions, evaluate: Callable[[Path], dict],
                   calibration: tuple[np.ndarray, dict] | None = None,
                   echo: Callable[[str], None] = print) -> QuantizeResult:
    """Make, score and (if it passes the gate, or ``opts.force``) write the FP16/INT8 model.

    ``evaluate(path)`` returns metrics (``miou``, ``per_class_iou``, ``classes``) of a model
    file; ``calibration`` is ``(float32 (N, 3, h, w), description)`` for INT8. Nothing is
    written at the output unless the model is accepted.
    """
    model, precision, target = Path(model), opts.precision, opts.target
    if precision not in ("fp16", "int8"):
        raise SegrtError(f"--precision {precision!r}: choose fp16 or int8")
    if target not in TARGETS:
        raise SegrtError(f"--target {target!r}: choose {' or '.join(TARGETS)}")
    base = load_verified_manifest(model)
    if base.precision != "fp32":
        raise ModelError(f"{model}: already {base.precision}; quantize the FP32 model that 'segrt export' wrote")
    if precision == "int8" and calibration is None:
        raise SegrtError("INT8 needs calibration frames")
    output = Path(opts.output) if opts.output else default_output(model, precision, target)
    check_paths({"MODEL": model}, {"--output": output})
    echo(f"scoring FP32 {model.name} …")
    reference = evaluate(model)

    work = Path(tempfile.mkdtemp(prefix=".segrt-quant-", dir=output.parent if output.parent.exists() else None))
    try:
        from segrt.engines.export import fold_fp16_storage

        source = work / "fp32.onnx"  # FP16-stored weights (the shipped models) back to float32
        onnx.save(fold_fp16_storage(onnx.load(str(model))), str(source))
        if precision == "int8" and target == "onnxruntime":
            prepared = work / "prepared.onnx"
            _prepare_for_ort(source, prepared)
            source = prepared
        exclusions = resolve_exclusions(source, opts.exclude)
        disabled = ORT_DISABLE_FOR_TENSORRT_QDQ if (precision, target) == ("int8", "tensorrt") else ()
        attempts: list[dict] = []
        ranking: list[str] | None = None
        k = 0
        while True:
            candidate = work / f"candidate{len(attempts)}.onnx"
            manifest = _make_candidate(model, base, source, candidate, opts, exclusions, calibration, disabled)
            echo(f"scoring {precision.upper()} ({target}, {len(exclusions.nodes)} nodes and "
                 f"{len(exclusions.op_types)} op types kept in higher precision) …")
            gate = compare_metrics(reference, evaluate(candidate), opts.threshold)
            attempts.append({"excluded_nodes": len(exclusions.nodes), "miou": gate.miou, "passed": gate.passed})
            if gate.passed or not opts.auto or precision != "int8":
                break
            if ranking is None:
                echo(f"gate failed ({gate.delta:+.2f} points); ranking layers by the error they add …")
                ranking = [n for n, _ in layer_sensitivity(source, candidate, calibration[0][:8],
                                                           base.input_name, disabled)]
            if k >= len(ranking):  # everything ranked is already in higher precision
                break
            k = min(max(1, 2 * k), len(ranking))
            exclusions = exclusions.plus(ranking[:k])
            echo(f"gate failed ({gate.delta:+.2f} points); keeping the {k} most sensitive layers in "
                 f"higher precision: {', '.join(ranking[:min(k, 4)])}{' …' if k > 4 else ''}")
        echo(format_gate(gate, precision.upper()))
        if not gate.passed and not opts.force:
            return QuantizeResult(None, None, gate, exclusions, attempts)
        gate.forced = not gate.passed
        manifest = dataclasses.replace(manifest, quantization={**manifest.quantization, "gate": gate.to_dict(),
                                                               "attempts": attempts})
        with atomic_output(output, "quantized model", parents=True) as tmp:
            shutil.copyfile(candidate, tmp)
        manifest.save(output)
        return QuantizeResult(output, manifest, gate, exclusions, attempts)
    finally:
        shutil.rmtree(work, ignore_errors=True)

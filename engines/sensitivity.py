"""Which layers INT8 hurts most: the error each quantized node adds, measured against the
FP32 graph on a few calibration frames (``segrt quantize --auto`` keeps the worst in float)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")

def _with_outputs(model: onnx.ModelProto, names: list[str]) -> bytes:
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]}
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(n, types.get(n, onnx.TensorProto.FLOAT), None))
    return m.SerializeToString()


def layer_sensitivity(reference: Path, quantized: Path, frames: np.ndarray, input_name: str,
                      disabled_optimizers: tuple[str, ...] = ()) -> list[tuple[str, float]]:
    """Quantized compute nodes ranked by the error they add (worst first).

    For every node that reads a dequantized tensor, the relative error of its output against
    the reference graph minus the largest relative error among its inputs: what this layer
    adds, not what it inherits.
    """
    import onnxruntime as ort

    ref_model, q_model = onnx.load(str(reference)), onnx.load(str(quantized))
    producer = {o: n for n in q_model.graph.node for o in n.output}

    def origin(t: str) -> str:  # follow Q/DQ back to the tensor they quantize
        while t in producer and producer[t].op_type in QDQ_OPS:
            t = producer[t].input[0]
        return t

    ref_tensors = {o for n in ref_model.graph.node for o in n.output}
    nodes = []
    for n in q_model.graph.node:
        if n.op_type in QDQ_OPS or not n.output or n.output[0] not in ref_tensors:
            continue
        if any(t in producer and producer[t].op_type == "DequantizeLinear" for t in n.input[:1]):
            nodes.append((n.name, n.output[0], [origin(t) for t in n.input[:1]]))
    tensors = sorted({t for _, out, ins in nodes for t in [out, *ins] if t in ref_tensors})

    def run(model, disabled=()):
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(_with_outputs(model, tensors), opts, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=list(disabled))
        return [dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {input_name: x[None]}), strict=True))
                for x in frames]

    ref_out, q_out = run(ref_model), run(q_model, disabled_optimizers)

    def rel_err(t: str) -> float:
        if t not in ref_tensors:
            return 0.0  # the graph input: exact in both
        num = sum(float(np.sum((q[t].astype(np.float32) - r[t].astype(np.float32)) ** 2))
                  for q, r in zip(q_out, ref_out, strict=True))
        den = sum(float(np.sum(r[t].astype(np.float32) ** 2)) for r in ref_out) or 1.0
        return (num / den) ** 0.5

    scores = [(name, rel_err(out) - max((rel_err(t) for t in ins), default=0.0)) for name, out, ins in nodes]
    return sorted(scores, key=lambda s: -s[1])

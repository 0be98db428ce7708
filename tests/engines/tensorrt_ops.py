"""ONNX operators TensorRT's ONNX parser supports, as used by segmentation graphs.

From NVIDIA's onnx-tensorrt operator support matrix (docs/operators.md), rows marked "Y";
only the vision-relevant subset is listed, so a new operator in an exported graph has to be
checked against that matrix before it is added here. Restrictions that bite segmentation
models are checked separately: MaxPool's Indices output and MaxUnpool are unsupported, and
Resize supports only the modes below.
"""

SUPPORTED = frozenset("""
Abs Add And ArgMax ArgMin AveragePool BatchNormalization Cast Ceil Clip Concat Constant
ConstantOfShape Conv ConvTranspose CumSum DepthToSpace DequantizeLinear Div Dropout Elu Equal
Erf Exp Expand Flatten Floor Gather GatherElements Gemm GlobalAveragePool GlobalMaxPool Greater
GreaterOrEqual HardSigmoid Identity InstanceNormalization LeakyRelu Less LessOrEqual Log
LogSoftmax MatMul Max MaxPool Mean Min Mul Neg Not Or Pad Pow PRelu QuantizeLinear Range
ReduceL2 ReduceMax ReduceMean ReduceMin ReduceSum Relu Reshape Resize Round Shape Sigmoid Sign
Size Slice Softmax Softplus SpaceToDepth Split Sqrt Squeeze Sub Sum Tanh Tile TopK Transpose
Unsqueeze Where
""".split())
UNSUPPORTED_EXAMPLES = frozenset({"MaxUnpool", "NonZero", "Mod", "OneHot", "Unique", "RoiAlign"})
RESIZE_MODES = {"nearest", "linear"}
RESIZE_TRANSFORMS = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}


def problems(model) -> list[str]:
    """What in an ``onnx.ModelProto`` TensorRT's parser would reject; empty if nothing."""
    found = []
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type not in SUPPORTED:
            found.append(f"{node.op_type} ({node.name}) is not in TensorRT's supported operators")
        elif node.op_type == "MaxPool" and len([o for o in node.output if o]) > 1:
            found.append(f"MaxPool {node.name} uses the Indices output")
        elif node.op_type == "Resize":
            mode = attrs["mode"].s.decode() if "mode" in attrs else "nearest"
            ctm = attrs["coordinate_transformation_mode"].s.decode() \
                if "coordinate_transformation_mode" in attrs else "half_pixel"
            if mode not in RESIZE_MODES or ctm not in RESIZE_TRANSFORMS:
                found.append(f"Resize {node.name}: mode {mode} / {ctm} unsupported")
    return found

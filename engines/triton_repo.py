"""A Triton Inference Server model repository from a segrt model (``segrt export-triton``).

    REPO/NAME/config.pbtxt        platform, batching, I/O names, dtypes and dims, the manifest
    REPO/NAME/1/model.onnx        (or model.plan for a TensorRT engine; model.py for the
    REPO/NAME/1/model.json         Python backend) and segrt's manifest beside it

The manifest also travels inside ``config.pbtxt`` as the parameter ``segrt_manifest``, so a
client (``--model triton://HOST:PORT/NAME``) preprocesses, colours and checks exactly as it
would with the file. A model whose input fixes its batch gets ``max_batch_size: 0`` (its batch
dimension written out, no dynamic batching); a free batch gets ``max_batch_size`` and Triton's
dynamic batcher, which merges concurrent requests into one model call.

Backends: ``onnxruntime`` (platform ``onnxruntime_onnx``, what NGC's Triton containers run on CPU
and GPU), ``tensorrt`` (a ``.engine`` as ``tensorrt_plan``, for the GPU and TensorRT it was built
with) and ``python`` (ONNX Runtime inside Triton's Python backend: for a server that has only
that backend, such as the one bundled with nvidia-pytriton).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from segrt.engines.manifest import ModelManifest, load_verified_manifest
from segrt.errors import ModelError, SegrtError
from segrt.files import atomic_output, shown

BACKENDS = ("onnxruntime", "tensorrt", "python")

PYTHON_MODEL = '''"""A segrt model for Triton's Python backend: ONNX Runtime on the CPU (segrt export-triton)."""

import json
import os
import sys

# Triton's Python backend stub is built against numpy 1.x: where the server's Python has numpy 2,
# a folder with numpy<2 and onnxruntime goes first on the path (export-triton --python-path),
# before anything imports numpy
sys.path[:0] = PYTHON_PATH

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.input = config["input"][0]["name"]
        self.output = config["output"][0]["name"]
        self.batched = config.get("max_batch_size", 0) > 0
        here = os.path.join(args["model_repository"], args["model_version"])
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(os.path.join(here, "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])

    def execute(self, requests):
        # the dynamic batcher hands over several requests at once: one model call for all of them
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input).as_numpy() for r in requests]
        if self.batched and len(arrays) > 1:
            labels = self.session.run([self.output], {self.input: np.concatenate(arrays)})[0]
            parts, start = [], 0
            for a in arrays:
                parts.append(labels[start:start + len(a)])
                start += len(a)
        else:
            parts = [self.session.run([self.output], {self.input: a})[0] for a in arrays]
        return [pb_utils.InferenceResponse([pb_utils.Tensor(self.output, p)]) for p in parts]
'''


def _input_batch(model: Path, manifest: ModelManifest) -> int | None:
    """The batch the model's input fixes (None when free)."""
    if model.suffix in (".engine", ".plan"):
        io = next((t for t in manifest.engine.get("io", []) if t.get("mode") == "input"), None)
        first = (io or {}).get("shape", [1])[0]
        return None if first < 0 else int(first)
    import onnxruntime as ort

    first = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_inputs()[0].shape[0]
    return first if isinstance(first, int) else None


def config_text(name: str, manifest: ModelManifest, backend: str, fixed_batch: int | None, max_batch: int,
                delay_us: int, instances: int) -> str:
    """``config.pbtxt`` for the model (protobuf text format of Triton's ModelConfig)."""
    h, w = manifest.preprocess.height, manifest.preprocess.width
    lead = [fixed_batch] if fixed_batch is not None else []
    head = {"onnxruntime": 'platform: "onnxruntime_onnx"', "tensorrt": 'platform: "tensorrt_plan"',
            "python": 'backend: "python"'}[backend]
    lines = [f'name: "{name}"', head, f"max_batch_size: {0 if fixed_batch is not None else max_batch}",
             f'input [ {{ name: "{manifest.input_name}" data_type: TYPE_FP32 dims: {lead + [3, h, w]} }} ]',
             f'output [ {{ name: "{manifest.output_name}" data_type: TYPE_UINT8 dims: {lead + [h, w]} }} ]']
    if fixed_batch is None:
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {delay_us} }}")
    kind = "KIND_GPU" if backend == "tensorrt" else "KIND_MODEL" if backend == "onnxruntime" else "KIND_CPU"
    lines.append(f"instance_group [ {{ kind: {kind} count: {instances} }} ]")
    lines.append(f'parameters {{ key: "segrt_manifest" value {{ string_value: {json.dumps(manifest.to_json())} }} }}')
    return "\n".join(lines) + "\n"


def validate_config(text: str, where: str) -> dict:
    """Parses ``text`` with Triton's own ModelConfig protobuf (tritonclient); the parsed config as a
    dict. A malformed file is a :class:`ModelError`."""
    try:
        from google.protobuf import json_format, text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise SegrtError("checking a Triton config needs tritonclient[grpc]: pip install -e '.[triton]'") from None
    try:
        parsed = text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ModelError(f"{where}: not a valid Triton model config ({exc})") from None
    return json_format.MessageToDict(parsed, preserving_proto_field_name=True)


def write_repository(model: Path, repo: Path, name: str | None = None, backend: str = "auto", max_batch: int = 8,
                     delay_us: int = 2000, instances: int = 1, python_path: str | None = None) -> Path:
    """Writes ``repo/NAME/`` (whole, or nothing); returns that folder."""
    model = Path(model)
    manifest = load_verified_manifest(model)
    engine = model.suffix in (".engine", ".plan")
    backend = ("tensorrt" if engine else "onnxruntime") if backend == "auto" else backend
    if backend not in BACKENDS:
        raise SegrtError(f"--backend {backend}: choose auto, {', '.join(BACKENDS)}")
    if engine != (backend == "tensorrt"):
        raise SegrtError(f"--backend {backend} serves {'.engine/.plan' if backend == 'tensorrt' else '.onnx'} "
                         f"files, and {shown(model)} is not one; pick the backend for the file")
    name = name or model.name.removesuffix(model.suffix).replace(".", "_")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise SegrtError(f"--name {name!r}: use letters, digits, '_' and '-' (Triton's model names)")
    target = Path(repo) / name
    if target.exists():
        raise SegrtError(f"{shown(target)} already exists; remove it or pick another --name (nothing was changed)")
    fixed = _input_batch(model, manifest)
    if python_path and backend != "python":
        raise SegrtError("--python-path is for --backend python only")
    text = config_text(name, manifest, backend, fixed, max_batch, delay_us, instances)
    validate_config(text, str(target / "config.pbtxt"))
    with atomic_output(target, "Triton model repository", directory=True, parents=True) as tmp:
        version = tmp / "1"
        version.mkdir(parents=True)
        (tmp / "config.pbtxt").write_text(text)
        filename = "model.plan" if backend == "tensorrt" else "model.onnx"
        shutil.copyfile(model, version / filename)
        manifest.save(version / filename)
        if backend == "python":
            paths = [str(Path(p).resolve()) for p in python_path.split(os.pathsep) if p] if python_path else []
            (version / "model.py").write_text(PYTHON_MODEL.replace("PYTHON_PATH", json.dumps(paths), 1))
    return target

"""segrt's package boundaries, read from the import graph of the source (every import
statement, those inside functions too: a lazy import is still a dependency).

Layers, lowest first; a module may import its own layer and the ones its row names:

- core: errors, files, preprocessing, metrics, datasets, machine/version facts (envinfo), plots
- models: the model definitions and checkpoints (torch), which the torch backend and export need
- backends: the runtime that runs a model file (ONNX Runtime, TensorRT, Triton, torch) and the
  shipped-model lookup. The TensorRT builder sits here because engines are built on first use
  at run time (Jetson users never run a separate build step).
- realtime: the run loop, sources, sinks, overlay and report, and the Python API over them
- training: training and its data (beside conversion and evaluation: neither imports it)
- convert: export, quantize, the Triton repository, calibration frames
- evaluation: eval and bench
- app: the CLI and the applications it starts (segrt run, segrt batch, segrt zoo)
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"segrt": "segrt", "realtime": "segrt.realtime", "engines": "segrt.engines",
           "train": "segrt.train", "calibration": "segrt.calibration"}

LAYERS = {
    "core": ["segrt", "segrt.errors", "segrt.files", "segrt.checks", "segrt.signals", "segrt.registry",
             "segrt.config", "segrt.images", "segrt.preprocess", "segrt.metrics", "segrt.envinfo", "segrt.plots",
             "segrt.datasets*"],
    "models": ["segrt.train", "segrt.train.models*", "segrt.train.checkpoint"],
    "backends": ["segrt.engines", "segrt.engines.manifest", "segrt.engines.base", "segrt.engines.*_backend",
                 "segrt.engines.remote", "segrt.engines.cuda_memory", "segrt.engines.tensorrt_build",
                 "segrt.engines.engine_cache", "segrt.zoo"],
    "realtime": ["segrt.realtime*", "segrt.api"],
    "training": ["segrt.train.*"],
    "convert": ["segrt.engines.export", "segrt.engines.quantize", "segrt.engines.sensitivity",
                "segrt.engines.triton_repo", "segrt.calibration*"],
    "evaluation": ["segrt.evaluation*"],
    "app": ["segrt.cli*", "segrt.__main__", "segrt.options", "segrt.app", "segrt.fleet", "segrt.zoo_build"],
}
ALLOWED = {
    "core": set(),
    "models": {"core"},
    "backends": {"core", "models"},  # the torch backend builds a .pt file's model
    "realtime": {"core", "backends"},
    "training": {"core", "models"},
    "convert": {"core", "models", "backends"},
    "evaluation": {"core", "backends", "realtime"},
    "app": set(LAYERS),
}
# The package's root offers ``segrt.Segmenter`` lazily (module __getattr__): a facade, not a
# dependency of everything that reads ``segrt.__version__``.
FACADE = {("segrt", "segrt.api")}


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The segrt modules ``name`` imports (``from pkg import mod`` counts as importing mod)."""
    out = set()
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = ".".join(base[: len(base) - node.level + 1] + ([module] if module else []))
            targets = [module, *(f"{module}.{a.name}" for a in node.names)]
        else:
            continue
        out.update(t for t in targets if t in known and t != name)
    return out


def layer_of(name: str) -> str | None:
    """The first layer with a pattern that names the module exactly, else the first that matches."""
    for layer, patterns in LAYERS.items():
        if name in patterns:
            return layer
    for layer, patterns in LAYERS.items():
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            return layer
    return None


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) - {b for a, b in FACADE if a == name} for name, path in known.items()}


def test_every_module_has_a_layer():
    assert not [m for m in modules() if layer_of(m) is None], "place new modules in LAYERS"


def test_imports_only_go_to_allowed_layers():
    wrong = [f"{a} ({layer_of(a)}) imports {b} ({layer_of(b)})"
             for a, targets in graph().items() for b in sorted(targets)
             if layer_of(b) != layer_of(a) and layer_of(b) not in ALLOWED[layer_of(a)]]
    assert not wrong, "\n".join(wrong)


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_layers_and_the_subpackages_have_no_cycles():
    assert _cycle({k: set(v) for k, v in ALLOWED.items() if k != "app"}) is None
    subpackage = {m: ".".join(m.split(".")[:2]) for m in modules() if m.count(".") >= 1}
    between: dict[str, set[str]] = {}
    for a, targets in graph().items():
        for b in targets:
            pa, pb = subpackage.get(a), subpackage.get(b)
            # the package's own top-level modules (segrt.cli, segrt.api, …) are each their own node
            if pa and pb and pa != pb:
                between.setdefault(pa, set()).add(pb)
    assert _cycle(between) is None, f"import cycle between packages: {' -> '.join(_cycle(between))}"


def test_the_check_sees_a_layer_violation_and_a_cycle():
    assert layer_of("segrt.engines.onnxruntime_backend") == "backends"
    assert layer_of("segrt.train.trainer") == "training" and layer_of("segrt.train.models.fpn") == "models"
    assert "segrt.engines.manifest" in graph()["segrt.engines.onnxruntime_backend"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert "realtime" not in ALLOWED["backends"] and "training" not in ALLOWED["evaluation"]

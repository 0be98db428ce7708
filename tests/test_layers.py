"""segrt's layers are its top-level folders, read from the import graph of the source (every
import statement, those inside functions too: a lazy import is still a dependency).

Folders, lowest first; a module may import its own folder and the folders before it, never one
after it, so every arrow between folders runs down:

- segrt/: the core: errors, files, config, preprocessing, metrics, datasets, machine facts, plots
  (and the shipped models' files, segrt/zoo/, as data)
- train/: the model definitions and checkpoints (torch), and training beside them
- engines/: the runtime that runs a model file (ONNX Runtime, TensorRT, Triton, torch), the
  shipped-model lookup, and conversion (export, quantize, the Triton repository). The TensorRT
  builder sits here because engines are built on first use at run time (Jetson users never
  run a separate build step).
- realtime/: the run loop, sources, sinks, overlay and report, and the Python API over them
- calibration/: the INT8 calibration frames
- evaluation/: eval, model-only latency and bench
- app/: the CLI and the applications it starts (segrt run, segrt batch, segrt zoo)

Two folders hold two layers each, kept apart inside: train/ (the models must not import
training: the torch backend and export load them without it) and engines/ (the backends must
not import conversion: running never needs export or quantize).
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ["segrt", "train", "engines", "realtime", "calibration", "evaluation", "app"]
# within a two-layer folder: (lower layer, its modules; upper layer, its modules), where None
# means every other module of the folder. The lower layer never imports the upper one.
INSIDE = {
    "train": ("models", ["segrt.train", "segrt.train.models*", "segrt.train.checkpoint"], "training", None),
    "engines": ("backends", None, "conversion", ["segrt.engines.export", "segrt.engines.quantize",
                                                "segrt.engines.sensitivity", "segrt.engines.triton_repo"]),
}
# The package's two doors reach the top on purpose: ``segrt.Segmenter`` (a lazy module
# __getattr__, so ``import segrt`` stays cheap) and ``python -m segrt``.
ENTRY = {("segrt", "segrt.realtime.api"), ("segrt.__main__", "segrt.app.cli")}


def package(folder: str) -> str:
    return "segrt" if folder == "segrt" else f"segrt.{folder}"


def modules(repo: Path = REPO, folders: list[str] = FOLDERS) -> dict[str, Path]:
    """Module name → file, for the folders as setup.py maps them (``benchmarks/import_graph.py``
    reads older trees with their own folders through this too)."""
    found = {}
    for folder in folders:
        for path in (repo / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(repo / folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package(folder), *parts])] = path
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


def folder_of(name: str, known: dict[str, Path] | None = None) -> str:
    path = (known or modules())[name]
    return path.relative_to(REPO).parts[0]


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) - {b for a, b in ENTRY if a == name} for name, path in known.items()}


def upward(edges: dict[str, set[str]], known: dict[str, Path]) -> list[str]:
    """Every import from a folder to a folder after it, and inside a two-layer folder from the
    lower layer to the upper one."""
    wrong = []
    for a, targets in edges.items():
        fa = folder_of(a, known)
        for b in sorted(targets):
            fb = folder_of(b, known)
            if FOLDERS.index(fb) > FOLDERS.index(fa):
                wrong.append(f"{a} ({fa}/) imports {b} ({fb}/)")
            elif fa == fb and fa in INSIDE:
                lower, upper = INSIDE[fa][0], INSIDE[fa][2]
                if _side(a, fa) == lower and _side(b, fa) == upper:
                    wrong.append(f"{a} ({lower}) imports {b} ({upper})")
    return wrong


def _side(name: str, folder: str) -> str:
    """Which layer of a two-layer folder ``name`` is in."""
    lower, lower_modules, upper, upper_modules = INSIDE[folder]
    if lower_modules is not None:
        return lower if any(fnmatch.fnmatchcase(name, p) for p in lower_modules) else upper
    return upper if any(fnmatch.fnmatchcase(name, p) for p in upper_modules) else lower


def test_the_folders_are_the_ones_setup_py_installs_in_this_order():
    declared = re.search(r"^FOLDERS = (\[.*?\])", (REPO / "setup.py").read_text(), re.M)
    assert declared and ast.literal_eval(declared.group(1)) == FOLDERS
    on_disk = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"configs"}
    assert on_disk == set(FOLDERS), "a new top-level package: add it to FOLDERS here and in setup.py"


def test_every_import_between_folders_runs_down():
    known = modules()
    wrong = upward(graph(), known)
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


def test_the_subpackages_have_no_cycles():
    subpackage = {m: ".".join(m.split(".")[:2]) for m in modules() if m.count(".") >= 1}
    between: dict[str, set[str]] = {}
    for a, targets in graph().items():
        for b in targets:
            pa, pb = subpackage.get(a), subpackage.get(b)
            # the core's own modules (segrt.files, segrt.config, …) are each their own node
            if pa and pb and pa != pb:
                between.setdefault(pa, set()).add(pb)
    assert _cycle(between) is None, f"import cycle between packages: {' -> '.join(_cycle(between))}"


def test_the_check_sees_an_import_that_runs_up_and_a_cycle():
    known = modules()
    assert folder_of("segrt.engines.onnxruntime_backend", known) == "engines"
    assert folder_of("segrt.evaluation.bench", known) == "evaluation"
    assert "segrt.engines.manifest" in graph()["segrt.engines.onnxruntime_backend"]
    assert upward({"segrt.files": {"segrt.app.cli"}}, known) == ["segrt.files (segrt/) imports segrt.app.cli (app/)"]
    assert upward({"segrt.train.models.fpn": {"segrt.train.trainer"}}, known)
    assert upward({"segrt.engines.base": {"segrt.engines.export"}}, known)
    assert not upward({"segrt.engines.export": {"segrt.engines.base", "segrt.train.models"}}, known)
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


# Training stands beside the runtime: only conversion, the torch backend and the app reach it.
REACH_TRAIN = {"train", "engines", "app"}


def test_only_the_engines_and_the_app_import_train():
    known = modules()
    wrong = [f"{a} imports {b}" for a, targets in graph().items() for b in sorted(targets)
             if folder_of(b, known) == "train" and folder_of(a, known) not in REACH_TRAIN]
    assert not wrong, "\n".join(wrong)

"""The runtime must run where torch is not installed (Jetson: numpy + OpenCV + TensorRT)."""

import subprocess
import sys
from pathlib import Path

import pytest

import segrt

RUNTIME_PACKAGES = ("realtime", "engines")
REPO = Path(segrt.__file__).resolve().parents[1]


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_segrt_run_with_onnxruntime_never_imports_torch(short_clip, tmp_path):
    code = f"""
import sys
from segrt.app.cli import main
main(["run", {str(short_clip)!r}, "--output", {str(tmp_path / "o.mp4")!r}, "--no-progress"])
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not loaded, loaded
print("frames ok")
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert "frames ok" in proc.stdout
    assert (tmp_path / "o.mp4").is_file()


@pytest.mark.parametrize("package", RUNTIME_PACKAGES)
def test_runtime_modules_import_without_torch(package):
    names = [f"segrt.{package}." + ".".join(p.relative_to(REPO / package).with_suffix("").parts)
             for p in sorted((REPO / package).rglob("*.py")) if p.name != "__init__.py"]
    # the two modules that exist to use torch, imported only when asked for
    names = [n for n in names if n not in ("segrt.engines.export", "segrt.engines.torch_backend")]
    assert names
    code = f"""
import importlib, sys
for name in {names!r}:
    importlib.import_module(name)
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), name
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr


def test_the_guard_would_fail_if_torch_were_imported():
    """The check above is only worth something if it can fail."""
    proc = run_python("import sys, torch; assert 'torch' not in sys.modules")
    assert proc.returncode != 0

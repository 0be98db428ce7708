"""A real Triton Inference Server on this CPU, for the tests: the ``tritonserver`` binary that the
nvidia-pytriton wheel bundles (its only backend is Python's), serving a repository written by
``segrt export-triton --backend python``.

Installed by ``./quickstart test`` with ``pip install --no-deps nvidia-pytriton`` (its own
package pins numpy < 2; only its server binary and libraries are used here). The Python backend's
stub embeds this interpreter: it needs this Python's libpython on ``LD_LIBRARY_PATH``, the
stub built for this Python version in the backend folder, and (the stub is built against numpy
1.x and ignores PYTHONPATH) a folder with numpy<2 and onnxruntime, which the repository's
``model.py`` puts first on its path (``segrt export-triton --python-path``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

INSTALL = "pip install --no-deps nvidia-pytriton==0.7.0 (./quickstart test does it)"
STUB_PYTHON = "pip install --target $SEGRT_TRITON_PYTHON 'numpy<2' onnxruntime (./quickstart test does it)"


def stub_python_path() -> Path:
    """A folder with numpy<2 and onnxruntime for the Python backend's stub, which is built
    against numpy 1.x: ``$SEGRT_TRITON_PYTHON``, else ``triton-python`` in this environment."""
    path = Path(os.environ.get("SEGRT_TRITON_PYTHON") or Path(sys.prefix) / "triton-python")
    if not (path / "numpy").is_dir() or not (path / "onnxruntime").is_dir():
        raise RuntimeError(f"{path}: the Triton tests need numpy<2 and onnxruntime there: {STUB_PYTHON}")
    return path


def bundled_server() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"the Triton tests need the tritonserver bundled with nvidia-pytriton: {INSTALL}")
    return Path(spec.origin).parent / "tritonserver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def triton_server(repo: Path, workdir: Path, timeout_s: float = 90.0) -> Iterator[dict]:
    """Starts tritonserver on free ports; yields {"http": PORT, "grpc": PORT, "log": PATH}."""
    root = bundled_server()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    backends = workdir / "backends"
    (backends / "python").mkdir(parents=True, exist_ok=True)
    for f in (root / "backends" / "python").iterdir():
        if f.is_file():
            shutil.copy2(f, backends / "python" / f.name)
    shutil.copy2(root / "python_backend_stubs" / version / "triton_python_backend_stub", backends / "python")
    libs = [sysconfig.get_config_var("LIBDIR"), str(root.parent.parent / "nvidia_pytriton.libs")]
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(libs + [os.environ.get("LD_LIBRARY_PATH", "")])}
    ports = {"http": _free_port(), "grpc": _free_port(), "metrics": _free_port()}
    log = workdir / "tritonserver.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(root / "bin" / "tritonserver"), "--model-repository", str(repo), "--backend-directory", str(backends),
             "--http-port", str(ports["http"]), "--grpc-port", str(ports["grpc"]), "--metrics-port",
             str(ports["metrics"]), "--exit-timeout-secs", "5"], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tritonserver exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{ports['http']}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"tritonserver not ready after {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield {**ports, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

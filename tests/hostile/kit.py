"""What every hostile case shares: running segrt as a user does, the folder snapshot that
proves nothing changed, the one-line error check, and the inputs several cases build."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
from pathlib import Path

import cv2
import numpy as np

from segrt.engines.zoo import CPU_DEFAULT, zoo_dir
from tests.conftest import run_segrt


def segrt(*args: str, cwd: Path, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    return run_segrt(*args, cwd=cwd, timeout=timeout, **popen)


def sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder``: a file's SHA-256, or the kind of anything else."""
    out = {}
    for p in sorted(folder.rglob("*")):
        mode = p.lstat().st_mode
        if stat.S_ISREG(mode):
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p.relative_to(folder))] = "dir" if stat.S_ISDIR(mode) else "special"
    return out


def model_copy(folder: Path, name: str = "m") -> Path:
    """The CPU default model and its manifest, copied as NAME.onnx and NAME.json."""
    folder.mkdir(parents=True, exist_ok=True)
    src = zoo_dir() / CPU_DEFAULT
    shutil.copyfile(src, folder / f"{name}.onnx")
    shutil.copyfile(src.with_suffix(".json"), folder / f"{name}.json")
    return folder / f"{name}.onnx"


def edit_manifest(model: Path, **changes) -> Path:
    doc = json.loads(model.with_suffix(".json").read_text())
    for key, value in changes.items():
        if key.startswith("preprocess_"):
            doc["preprocess"][key.removeprefix("preprocess_")] = value
        else:
            doc[key] = value
    model.with_suffix(".json").write_text(json.dumps(doc))
    return model


def png_header_claiming(path: Path, width: int, height: int) -> Path:
    """A small real PNG whose IHDR claims another size (a decompression bomb's header)."""
    ok, data = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    blob = bytearray(data.tobytes())
    blob[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    path.write_bytes(bytes(blob))
    return path


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))


TRAIN = "model: fcn8s\nepochs: 1\ninput_width: 64\ninput_height: 64\nbatch_size: 2\n"


def yaml_file(t: Path, text: str | bytes, name: str = "c.yaml") -> str:
    p = t / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(p)


# Each case: (folder, clip, tiny CamVid) → (argv, text the error line must contain).
# The clip and the dataset live outside the folder and are checked by their own hashes.


def checkpoint_copy(t: Path) -> Path:
    shutil.copyfile(zoo_dir() / "fcn8s_camvid.pt", t / "m.pt")
    return t / "m.pt"


def earlier_run(folder: Path) -> Path:
    folder.mkdir()
    (folder / "best.pt").write_bytes(b"an earlier run's best model")
    (folder / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n")
    return folder


def zero_frames(path: Path) -> Path:
    """A valid AVI container holding no frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    writer.release()
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened() and not cap.read()[0]
    cap.release()
    return path


def one_error_line(result: subprocess.CompletedProcess | tuple[int, str], code: int = 2) -> str:
    """The refusal's one line: exit ``code``, exactly one line on stderr starting ``error:``."""
    rc, err = (result.returncode, result.stderr) if isinstance(result, subprocess.CompletedProcess) else result
    err = err.strip()
    assert rc == code, (rc, err[-2000:])
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err[-2000:]
    return err

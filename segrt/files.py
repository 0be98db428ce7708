"""File helpers shared by the runtime, training and dataset code (torch-free)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_text_atomic(path: str | Path, text: str, what: str = "file") -> Path:
    """Writes ``text`` to ``path`` through a temporary name and a rename, so readers never see
    half a file and an earlier version survives a failed write. A path that is not a regular
    file (a pipe, /dev/stdout) is written directly. Failures become one-line errors."""
    import os

    from segrt.errors import SegrtError

    path = Path(path)
    direct = path.exists() and not path.is_file()
    target = path if direct else path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(target, "w") as f:
            f.write(text)
            f.flush()
        if not direct:
            os.replace(target, path)
    except OSError as exc:
        if not direct:
            Path(target).unlink(missing_ok=True)
        raise SegrtError(f"{path}: cannot write the {what} ({exc.strerror or exc}); check free space, "
                         "permissions and that the folder exists") from None
    return path

"""Checks of a command's outputs before any work: against its inputs (the same file by any
name, sidecar manifests included, or inside an input folder), against each other, and for a
folder that takes a new file. Each failure is a one-line error; nothing has been written."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from segrt.errors import SegrtError
from segrt.files import ENGINE_SUFFIXES, is_special, manifest_path, shown, temp_path


def sidecars(path: Path) -> list[Path]:
    """Files a model path brings along: its manifest (``model.onnx`` → ``model.json``)."""
    if path.suffix.lower() in (".onnx", *ENGINE_SUFFIXES):
        return [manifest_path(path)]
    return []


def _identity(path: Path) -> tuple:
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", real)


def _values(value: str | Path | None | Iterable[str | Path]) -> list[str | Path]:
    """One argument's paths: none, one, or several."""
    return [] if value is None else [value] if isinstance(value, str | Path) else list(value)


def _expand(paths: Mapping[str, str | Path | None | Iterable[str | Path]]) -> list[tuple[str, Path]]:
    out = []
    for label, value in paths.items():
        for v in _values(value):
            if str(v) == "":
                raise SegrtError(f"{label}: empty path; give a file name")
            p = Path(v)
            out.append((label, p))
            out.extend((f"{label} (manifest of {shown(p)})", s) for s in sidecars(p))
    return out


def check_paths(inputs: Mapping[str, str | Path | None | Iterable[str | Path]],
                outputs: Mapping[str, str | Path | None | Iterable[str | Path]]) -> None:
    """One-line error, before anything is written, if an output is an input (same file by any
    name, or inside an input folder), two outputs are the same file, or an output path is
    empty. Labels name the argument (``--report``, ``SOURCE``); sidecar manifests of model
    paths (``.onnx``, ``.engine``) are checked as well."""
    ins = _expand(inputs)
    outs = _expand(outputs)
    in_ids = {_identity(p): (label, p) for label, p in ins}
    in_dirs = [(label, os.path.realpath(p)) for label, p in ins if p.is_dir()]
    seen: dict[tuple, tuple[str, Path]] = {}
    for label, p in outs:
        if is_special(p):
            continue
        ident = _identity(p)
        if ident in in_ids:
            other, q = in_ids[ident]
            raise SegrtError(f"{label} {shown(p)} is the input {other} {shown(q)}; writing it would destroy "
                             "the input: choose another output name")
        real = os.path.realpath(p)
        for other, folder in in_dirs:
            if real.startswith(folder.rstrip(os.sep) + os.sep):
                raise SegrtError(f"{label} {shown(p)} is inside the input folder {other} {shown(folder)}; "
                                 "write it somewhere else")
        if ident in seen:
            other, q = seen[ident]
            raise SegrtError(f"{label} {shown(p)} and {other} {shown(q)} are the same file; give each output "
                             "its own name")
        seen[ident] = (label, p)


def check_writable(outputs: Mapping[str, str | Path | Iterable[str | Path] | None]) -> None:
    """Before any work: every output's folder (or the nearest one that exists, for folders a
    command makes) takes a new file, checked by creating and removing a temporary there. An
    output found unwritable only after the work would waste it."""
    for flag, value in outputs.items():
        for path in map(Path, _values(value)):
            if is_special(path):
                continue
            folder = next((d for d in [path.parent, *path.parent.parents] if d.exists()), Path("."))
            probe = temp_path(folder / path.name)
            try:
                os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise SegrtError(f"{flag} {shown(path)}: cannot write in {shown(folder)} ({exc.strerror}); choose "
                                 "a folder you can write to") from None
            with contextlib.suppress(OSError):
                os.unlink(probe)

"""The one write path for everything segrt writes (torch-free; used by the runtime, export,
quantization, training and dataset code).

Every file or folder segrt writes goes through :func:`atomic_output`: the content is written
under a unique hidden name in the target folder (``.NAME.segrt-tmp-HOST-PID-TOKEN.SUFFIX``, a name
no user file has), flushed to disk, and renamed over the target only when complete. On an
error, an exception or a signal (SIGTERM and SIGHUP end the command through ``SystemExit``,
see :func:`segrt.signals.signal_cleanup`) the temporary is removed and the target is untouched.
Special files (a FIFO, a character device, ``/dev/stdout``) are written in place, never
replaced by a regular file.

Before any work, commands check every output against their inputs (:mod:`segrt.checks`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from segrt.errors import SegrtError

TEMP_TAG = ".segrt-tmp-"
_LIVE: set[Path] = set()  # temporaries being written; removed by the signal handler and at exit
_STREAMS = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/")


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_root() -> Path:
    """segrt's cache (downloads, TensorRT engines and timing caches): ``$SEGRT_CACHE``, else
    ``~/.cache/segrt``."""
    env = os.environ.get("SEGRT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "segrt"


def runs_dir() -> Path:
    """Where commands put what a user did not name (``segrt run`` without -o, ``segrt bench``,
    exports of shipped models): ``$SEGRT_RUNS_DIR``, else ``runs`` under the working folder."""
    return Path(os.environ.get("SEGRT_RUNS_DIR") or "runs")


def numbered_folder(stem: str) -> Path:
    """The first of ``runs_dir()/STEM``, ``STEM2``, ``STEM3``, … that does not exist yet, so a
    command never writes into what an earlier one left."""
    base = runs_dir()
    for i in range(1, 100000):
        folder = base / (stem if i == 1 else f"{stem}{i}")
        if not folder.exists():
            return folder
    raise SegrtError(f"{base}: no free {stem}N folder left; clean up {base}")


def is_special(path: str | Path) -> bool:
    """True for paths that must be written in place: FIFOs, devices, sockets, /dev/stdout."""
    if str(path).startswith(_STREAMS):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


NAME_MAX = 255  # bytes in one file name on every filesystem segrt writes to


def temp_path(path: Path) -> Path:
    """A fresh hidden name beside ``path`` that keeps its suffix (writers pick formats by it).
    The stem is shortened (whole characters) when the name would pass ``NAME_MAX`` bytes, so a
    legal output name always has a legal temporary."""
    tail = f"{TEMP_TAG}{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}"
    room = NAME_MAX - 1 - len(tail.encode())
    stem = path.stem.encode()[:max(room, 1)].decode(errors="ignore") or "o"
    return path.with_name(f".{stem}{tail}")


@functools.cache
def host_tag() -> str:
    """Six hex digits naming this machine and boot: a temporary's writer is looked for only
    where it ran (a folder shared by several machines, or containers, holds theirs too)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        boot = ""
    return hashlib.sha256(f"{os.uname().nodename}/{boot}".encode()).hexdigest()[:6]


def _owner_pid(name: str) -> int | None:
    """The PID in the name of a temporary this machine's segrt wrote
    (``.STEM.segrt-tmp-HOST-PID-TOKEN.SUFFIX``), else None (another machine's, or not one)."""
    head, sep, rest = name.rpartition(TEMP_TAG)
    parts = rest.split("-", 2)
    if not sep or not head.startswith(".") or len(parts) < 3 or parts[0] != host_tag():
        return None
    return int(parts[1]) if parts[1].isdigit() and len(parts[1]) < 10 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: a process of another user has that PID
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Removes the temporaries in ``folder`` that a segrt process of this machine killed
    outright (``kill -9``, a power cut) left behind: the process named in the name is gone.
    Another machine's (a shared folder) are left alone. Returns what was removed; never raises
    (a folder it cannot list is left as it is)."""
    removed = []
    try:
        entries = [e for e in os.scandir(folder) if TEMP_TAG in e.name]
    except OSError:
        return removed
    for entry in entries:
        pid = _owner_pid(entry.name)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        path = Path(entry.path)
        if path not in _LIVE:
            remove_path(path)
            removed.append(path)
    return removed


def write_error(path: Path, what: str, exc: OSError) -> SegrtError:
    return SegrtError(f"{shown(path)}: cannot write the {what} ({exc.strerror or exc}); check free space, "
                      "permissions and that the folder exists")


class PendingOutput:
    """One output being written: ``tmp`` is where to write (``path`` itself for a special
    file); :meth:`commit` flushes it and renames it over ``path``, :meth:`discard` removes it.
    ``directory``: the content is a folder (frames, a dataset), renamed into place whole; the
    target must not exist or be empty."""

    def __init__(self, path: str | Path, what: str = "file", directory: bool = False,
                 parents: bool = False) -> None:
        self.path, self.what, self.directory = Path(path), what, directory
        self.special = not directory and is_special(self.path)
        self.tmp = self.path if self.special else temp_path(self.path)
        self._made: list[Path] = []  # parent folders made here; removed again if left empty
        if not self.special and self.path.parent.is_dir():
            remove_stale_temporaries(self.path.parent)
        if parents and not self.special:
            missing = [d for d in [self.path.parent, *self.path.parent.parents] if not d.exists()]
            for d in reversed(missing):
                try:
                    d.mkdir()
                except OSError as exc:
                    self._remove_made()
                    raise write_error(self.path, what, exc) from None
                self._made.append(d)
        if not self.special:
            _LIVE.add(self.tmp)
            if directory:
                try:
                    self.tmp.mkdir()
                except OSError as exc:
                    _LIVE.discard(self.tmp)
                    self._remove_made()
                    raise write_error(self.path, what, exc) from None

    def commit(self) -> Path:
        if self.special:
            return self.path
        try:
            if not self.tmp.exists():
                raise SegrtError(f"{shown(self.path)}: the {self.what} was not written (the writer produced "
                                 "no file)")
            _fsync(self.tmp)
            if self.directory and self.path.is_dir() and not any(self.path.iterdir()):
                self.path.rmdir()
            os.replace(self.tmp, self.path)
            _fsync(self.path.parent)
        except OSError as exc:
            self.discard()
            raise write_error(self.path, self.what, exc) from None
        except BaseException:
            self.discard()
            raise
        _LIVE.discard(self.tmp)
        return self.path

    def discard(self) -> None:
        if not self.special:
            remove_path(self.tmp)
            _LIVE.discard(self.tmp)
        self._remove_made()

    def _remove_made(self) -> None:
        for d in reversed(self._made):
            with contextlib.suppress(OSError):
                d.rmdir()  # only if still empty
        self._made = []


@contextlib.contextmanager
def atomic_output(path: str | Path, what: str = "file", directory: bool = False,
                  parents: bool = False) -> Iterator[Path]:
    """Yields the path to write ``path``'s content to; renames it over ``path`` when the block
    ends normally, removes it otherwise (see :class:`PendingOutput`; ``parents`` makes missing
    folders, removed again on failure)."""
    pending = PendingOutput(path, what, directory, parents)
    try:
        yield pending.tmp
    except OSError as exc:
        pending.discard()
        raise write_error(pending.path, what, exc) from None
    except BaseException:
        pending.discard()
        raise
    pending.commit()


def write_bytes_atomic(path: str | Path, data: bytes, what: str = "file") -> Path:
    """Writes ``data`` to ``path`` through :func:`atomic_output`."""
    with atomic_output(path, what) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str, what: str = "file") -> Path:
    """Writes ``text`` (UTF-8) to ``path`` through :func:`atomic_output`."""
    return write_bytes_atomic(path, text.encode(), what)


def write_image(path: str | Path, image, what: str = "image") -> Path:
    """Writes a BGR uint8 image (format by suffix) through :func:`atomic_output`."""
    import cv2

    with atomic_output(path, what) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise SegrtError(f"{shown(path)}: cannot write the {what}; check the suffix (.png, .jpg), free space "
                             "and permissions")
    return Path(path)


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Saves a matplotlib figure (format by suffix) through :func:`atomic_output`."""
    with atomic_output(path, "plot") as tmp:
        fig.savefig(tmp, dpi=dpi)
    return Path(path)


def _fsync(path: Path) -> None:
    paths = [path] if not path.is_dir() else [path, *(p for p in path.rglob("*") if p.is_file())]
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:  # directories on some filesystems cannot be fsynced
            pass
        finally:
            os.close(fd)


def remove_path(path: Path) -> None:
    """Removes a file or folder tree if it exists (cleanup; never raises)."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def cleanup_temporaries() -> None:
    for tmp in list(_LIVE):
        remove_path(tmp)
        _LIVE.discard(tmp)


def shown(path: str | Path, limit: int = 120) -> str:
    """A path as error messages show it: control characters escaped, long names shortened."""
    text = str(path).encode("unicode_escape", "backslashreplace").decode("ascii") \
        if any(ord(c) < 32 or c == "\x7f" for c in str(path)) else str(path)
    return text if len(text) <= limit else text[: limit // 2] + "…" + text[-limit // 2:]


def read_user_text(path: str | Path, what: str, limit: int = 1 << 20, error: type[SegrtError] = SegrtError) -> str:
    """The text of a small file the user gave (a config, a manifest): refused with a one-line
    error when it is missing, not a regular file (``/dev/zero``, a FIFO), over ``limit``
    bytes, or not UTF-8."""
    path = Path(path)
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:
        raise error(f"{shown(path)}: cannot read the {what} ({getattr(exc, 'strerror', None) or exc}); check the "
                    "path") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{shown(path)}: the {what} must be a regular file, not a device, pipe or folder")
    if st.st_size > limit:
        raise error(f"{shown(path)}: the {what} is {st.st_size} bytes, over the {limit}-byte limit; is it the "
                    "right file?")
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{shown(path)}: cannot read the {what} ({exc.strerror}); check permissions") from None
    if len(data) > limit:
        raise error(f"{shown(path)}: the {what} is over the {limit}-byte limit; is it the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{shown(path)}: the {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def excerpt(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about user values."""
    text = repr(value)
    return one_line(text if len(text) <= limit else text[: limit - 1] + "…")


def one_line(message: str, limit: int = 600) -> str:
    """An error message as one bounded line: newlines escaped, the middle of a long one cut."""
    text = message.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 100] + " … " + text[-97:]


ENGINE_SUFFIXES = (".engine", ".plan")


def manifest_path(model_path: str | Path) -> Path:
    """``model.onnx`` → ``model.json``; ``model.engine`` → ``model.engine.json`` (an engine and
    the ONNX it was built from usually share a folder and a stem)."""
    p = Path(model_path)
    return p.with_name(p.name + ".json") if p.suffix.lower() in ENGINE_SUFFIXES else p.with_suffix(".json")

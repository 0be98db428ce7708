"""What ``segrt batch`` checks before any work: which files the patterns name, whether every
output it would replace is its own, and whether a Ray address answers.

- ``**`` in a pattern follows folder links but enters each real folder once (by device and
  inode), so ``rec/prev -> .`` matches ``rec/a.mp4`` once instead of walking forever.
- An output that exists is replaced only when segrt batch wrote it: its per-file report carries
  a ``batch`` record (the overlay's size and mtime) that a user's own file does not, and
  ``summary.json`` says ``written_by: segrt batch``. Reports of the batch code before that
  record are recognised by their content. Anything else is refused before any work.
- A Ray address is tried with a plain TCP connection and the HTTP/2 preface (Ray's GCS and its
  client server speak gRPC) before ``ray.init``, which otherwise retries an unreachable
  address for minutes while streaming its own warnings.
"""

from __future__ import annotations

import glob
import json
import os
import socket
import stat
import threading
from pathlib import Path

from segrt.errors import SegrtError
from segrt.files import shown, write_text_atomic

WRITTEN_BY = "segrt batch"
_LEGACY_SUMMARY = {"model", "where", "files", "done", "skipped", "failed", "results"}
_NET_TIMEOUT_S = 4.0  # each of: name lookup, connect, first reply; all three stay under 15 s


def glob_once(pattern: str) -> list[str]:
    """``glob.glob(pattern, recursive=True)``, except that ``**`` enters each real folder once: a
    link to a folder already walked (an ancestor, a sibling) is not entered again. Sorted."""
    parts = pattern.split("/")
    if "**" not in parts:
        return sorted(glob.glob(pattern))
    i = parts.index("**")
    head = "/".join(parts[:i]) or ("/" if i else "")
    rest = "/".join(parts[i + 1:])
    bases = glob.glob(head) if glob.has_magic(head) else [head]
    hits: list[str] = []
    for base in bases:
        for folder in _folders_once(base):
            if rest:
                hits += glob_once(os.path.join(glob.escape(folder), rest))
            else:  # a trailing ** names the folders and what is in them, as glob does
                inside = [os.path.join(folder, e) for e in _visible(folder)]
                named = folder + "/" if folder == base else folder  # as glob names them
                hits += ([named] if folder else []) + [p for p in inside if not os.path.isdir(p)]
    return sorted(set(hits))


def _folders_once(top: str) -> list[str]:
    """``top`` and every folder below it (links followed, hidden names skipped as glob skips
    them), each real folder once; ``top`` "" is the current folder, shown as ""."""
    seen: set[tuple[int, int]] = set()
    out: list[str] = []
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder or ".")
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        out.append(folder)
        subs = [os.path.join(folder, e) for e in _visible(folder)]
        stack += reversed([s for s in subs if os.path.isdir(s)])  # sorted, depth first
    return out


def _visible(folder: str) -> list[str]:
    try:
        return sorted(e for e in os.listdir(folder or ".") if not e.startswith("."))
    except OSError:
        return []


def fingerprint(path: Path) -> dict | None:
    """A regular file's size and mtime (ns), as the batch record keeps them; None otherwise."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns} if stat.S_ISREG(st.st_mode) else None


def stamp_report(report: Path, video: Path) -> None:
    """Adds the batch record to a report this batch wrote: the overlay's name, size and mtime, so
    a later batch knows the pair is its own."""
    doc = _json(report)
    if doc is None:
        return
    doc["batch"] = {"written_by": WRITTEN_BY, "overlay": {"name": video.name, **(fingerprint(video) or {})}}
    write_text_atomic(report, json.dumps(doc, indent=2) + "\n", "report")


def foreign_outputs(jobs: list[dict], summary: Path) -> list[Path]:
    """Outputs the batch would replace that exist and that segrt batch did not write."""
    foreign = []
    for job in jobs:
        video, report = Path(job["output"]), Path(job["report"])
        doc = _json(report)
        mine = doc is not None and _is_batch_report(doc, video)
        if os.path.lexists(video) and not (mine and _is_its_overlay(doc, report, video)):
            foreign.append(video)
        if os.path.lexists(report) and not mine:
            foreign.append(report)
    if os.path.lexists(summary):
        doc = _json(summary)
        if doc is None or not (doc.get("written_by") == WRITTEN_BY or _LEGACY_SUMMARY <= doc.keys()):
            foreign.append(summary)
    return foreign


def refuse_foreign(foreign: list[Path], out_dir: Path) -> None:
    """The one-line refusal that names what :func:`foreign_outputs` found."""
    if len(foreign) == 1:
        raise SegrtError(f"{shown(foreign[0])} exists and segrt batch did not write it; nothing was run. Move it away "
                         f"or choose another --output folder than {shown(out_dir)}")
    if foreign:
        names = ", ".join(shown(p.name, 40) for p in foreign[:4]) + (", …" if len(foreign) > 4 else "")
        raise SegrtError(f"{len(foreign)} files in {shown(out_dir)} exist that segrt batch did not write ({names}); "
                         "nothing was run. Move them away or choose another --output folder")


def _json(path: Path) -> dict | None:
    """A regular file's JSON object, or None (missing, a link, too big, unreadable, not an object)."""
    found = fingerprint(path)
    if found is None or found["size"] > 16 << 20:
        return None
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _overlay_record(doc: dict) -> dict | None:
    """The batch record's overlay entry: None without a batch record, {} for a malformed one."""
    record = doc.get("batch")
    if not isinstance(record, dict):
        return None
    overlay = record.get("overlay")
    return overlay if record.get("written_by") == WRITTEN_BY and isinstance(overlay, dict) else {}


def _is_batch_report(doc: dict, video: Path) -> bool:
    """The report segrt batch wrote for ``video``: with the batch record, or (before it) a
    ``segrt run`` report whose outputs hold this very overlay (the same path, not just the same
    name: ``segrt run cam/drive.mp4 --report cam/drive.json`` wrote its video elsewhere, and
    cam/drive.mp4 is the user's)."""
    overlay = _overlay_record(doc)
    if overlay is not None:
        return overlay.get("name") == video.name
    outputs = doc.get("outputs")
    if not (isinstance(doc.get("source"), dict) and "frames_out" in doc and "stopped_by" in doc
            and isinstance(outputs, list)):
        return False
    target = video.resolve()
    return any(isinstance(o, str) and o and Path(o).resolve() == target for o in outputs)


def _is_its_overlay(doc: dict, report: Path, video: Path) -> bool:
    """The overlay on disk is the one the report recorded (same size and mtime); before the
    record: a regular file written no later than its report."""
    now = fingerprint(video)
    if now is None:
        return False
    overlay = _overlay_record(doc)
    if overlay is not None:
        return (overlay.get("size"), overlay.get("mtime_ns")) == (now["size"], now["mtime_ns"])
    written = fingerprint(report)
    return written is not None and now["mtime_ns"] <= written["mtime_ns"]


def check_ray_address(address: str) -> None:
    """A one-line error unless something at ``address`` (HOST:PORT of the head's GCS,
    ray://HOST:PORT of its client server, or auto) answers as a gRPC server within seconds.
    ``local`` starts Ray here and is not checked."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise SegrtError("--ray needs Ray: pip install -e '.[ray]'")
    if address == "local":
        return
    shown_as = f"--ray {address}"
    if address == "auto":
        address = _auto_address()
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if address.startswith("ray://") and not sep:
        host, port = target, "10001"
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in target:
        raise SegrtError(f"{shown_as}: not an address; give HOST:PORT (the head's GCS port, 6379 by default), "
                         "ray://HOST:10001, auto or local")
    why = _probe(host, int(port))
    if why:
        raise SegrtError(f"{shown_as}: {why}; start the cluster with 'ray start --head' or check the address "
                         "(nothing was run)")


def _auto_address() -> str:
    """The cluster ``ray.init(address="auto")`` would join (RAY_ADDRESS, else the last one
    ``ray start`` recorded on this machine)."""
    from ray._private.services import canonicalize_bootstrap_address

    try:
        found = canonicalize_bootstrap_address("auto")
    except (ConnectionError, ValueError):
        found = None
    if not found:
        raise SegrtError("--ray auto: no running Ray cluster found (RAY_ADDRESS is not set and 'ray start' has not "
                         "run here); give its address, or --ray local to start one")
    return found


def _probe(host: str, port: int) -> str | None:
    """Why ``host:port`` is not a gRPC server, or None: the name resolves, a TCP connection
    opens, and an HTTP/2 preface gets a SETTINGS frame back (skipped where RAY_USE_TLS is on)."""
    found: list = []
    lookup = threading.Thread(target=_resolve, args=(host, port, found), daemon=True)
    lookup.start()
    lookup.join(_NET_TIMEOUT_S)
    if not found:
        return f"looking up {host} took over {_NET_TIMEOUT_S:.0f} s"
    if isinstance(found[0], Exception):
        return f"cannot resolve host {host}"
    why = None
    for family, addr in found[0][:2]:  # localhost may be ::1 first and Ray on 127.0.0.1: try both families
        why = _probe_address(host, port, family, addr)
        if why is None:
            return None
    return why


def _probe_address(host: str, port: int, family: int, addr: tuple) -> str | None:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(_NET_TIMEOUT_S)
            s.connect(addr)
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return None
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            reply = s.recv(9)
    except TimeoutError:
        return f"no answer from {host}:{port} within {_NET_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return f"cannot connect to {host}:{port} ({exc.strerror or exc})"
    if len(reply) < 4 or reply[3] != 4:  # the frame type of SETTINGS
        return f"{host}:{port} answers but not as a Ray cluster (no gRPC reply)"
    return None


def _resolve(host: str, port: int, found: list) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        by_family = {}  # the first address of each family, in the resolver's order
        for family, _, _, _, addr in infos:
            by_family.setdefault(family, addr)
        found.append(list(by_family.items()))
    except (OSError, UnicodeError) as exc:  # UnicodeError: a label over 63 characters
        found.append(exc)

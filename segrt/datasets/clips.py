"""Unlabeled driving clips of other cities and countries, from public repositories.

``clips_sources.json`` names each clip by repository, commit and path, with its SHA-256,
country, licence and role:

- ``flicker``: three clips held out for the label-free checks (flicker, sky/road) of models
  on roads CamVid never showed; never trained or pseudo-labeled on;
- ``pool``: the self-training pool (``segrt pseudo-label`` labels frames of it with a teacher).

``segrt data clips`` copies them into the cache (``ROOT/NAME.mp4``) and checks every digest.
The clips' rights are their uploaders' (most repositories carry no licence): they are read
here for evaluation and self-training and never redistributed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from segrt.datasets.public import fetch_checked
from segrt.errors import DataError
from segrt.files import sha256_file, write_bytes_atomic


@dataclass(frozen=True)
class Clip:
    name: str
    repo: str
    commit: str
    path: str
    sha256: str
    role: str
    country: str
    shows: str
    licence: str
    # (x, y, w, h) of the part used, for portrait phone clips: the landscape band of the road ahead
    crop: tuple[int, int, int, int] | None = None


def load_clips() -> list[Clip]:
    doc = json.loads(resources.files("segrt.datasets").joinpath("clips_sources.json").read_text())
    return [Clip(**{**c, "crop": tuple(c["crop"]) if c.get("crop") else None}) for c in doc["clips"]]


def default_root() -> Path:
    """Where ``segrt data clips`` puts the clips: ``$SEGRT_DATA/clips`` or the cache."""
    from segrt.datasets import default_data_root

    return default_data_root() / "clips"


def clip_file(root: Path, clip: Clip) -> Path:
    return root / f"{clip.name}{Path(clip.path).suffix}"


def fetch_clips(root: Path, role: str | None = None, mirrors: Path | None = None,
                progress: bool | None = None) -> list[tuple[Clip, Path]]:
    """Every clip (of ``role``) in ``root``, fetched and checked where missing. A file already
    there is checked too: one whose digest differs is an error, not replaced."""
    clips = [c for c in load_clips() if role is None or c.role == role]
    out = []
    for clip in tqdm(clips, desc="clips", unit="clip", disable=None if progress is None else not progress):
        path = clip_file(root, clip)
        if path.exists() and not path.is_file():
            raise DataError(f"{path}: exists and is not a regular file; move it away and run 'segrt data clips' again")
        if path.is_file():
            if sha256_file(path) != clip.sha256:
                raise DataError(f"{path}: not the clip {clip.repo}:{clip.path} (SHA-256 differs); move it away and "
                                "run 'segrt data clips' again")
        else:
            write_bytes_atomic(path, fetch_checked(clip.repo, clip.commit, clip.path, clip.sha256, mirrors), "clip")
        out.append((clip, path))
    return out

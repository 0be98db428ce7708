"""Files of public git repositories at pinned commits, each checked by SHA-256: the labeled
frames of the dev check (:mod:`.roads`) and the driving clips (:mod:`.clips`). Downloaded from
``raw.githubusercontent.com``, or read from local git mirrors (``DIR/OWNER+NAME/repo``)."""

from __future__ import annotations

import hashlib
import subprocess
import urllib.request
from pathlib import Path

from segrt.datasets.fetch import network_error
from segrt.errors import DataError
from segrt.files import shown

RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def mirror_git_dir(mirrors: Path, repo: str) -> Path:
    """The git directory of ``repo`` (owner/name) in a folder of mirrors (``owner+name/repo``)."""
    base = mirrors / repo.replace("/", "+")
    for candidate in (base / "repo" / ".git", base / "repo", base):
        if (candidate / "objects").is_dir():
            return candidate
    raise DataError(f"--mirrors {shown(mirrors)}: no git mirror of {repo} (looked for {shown(base)}/repo); "
                    "fetch it, or leave out --mirrors to download")


def read_file(repo: str, commit: str, path: str, mirrors: Path | None) -> bytes:
    if mirrors is not None:
        done = subprocess.run(["git", "--git-dir", str(mirror_git_dir(mirrors, repo)), "cat-file", "blob",
                               f"{commit}:{path}"], capture_output=True, check=False)
        if done.returncode:
            raise DataError(f"{repo}@{commit[:10]}:{path}: not in the mirror; fetch that commit again")
        return done.stdout
    url = RAW_URL.format(repo=repo, commit=commit, path=path)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.read()
    except (OSError, ValueError) as exc:
        raise network_error(f"{repo}@{commit[:10]}:{path}", url, exc, "or use --mirrors DIR") from None


def fetch_checked(repo: str, commit: str, path: str, sha256: str, mirrors: Path | None) -> bytes:
    """The bytes of ``repo@commit:path``; a digest other than ``sha256`` is an error."""
    data = read_file(repo, commit, path, mirrors)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise DataError(f"{repo}@{commit[:10]}:{path}: SHA-256 {digest[:12]}…, expected {sha256[:12]}…; "
                        "nothing was written for this set")
    return data

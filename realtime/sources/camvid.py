"""CamVid splits and sequences as video: ``camvid:val``, ``camvid:train/0001TP``."""

from __future__ import annotations

from pathlib import Path

from segrt.datasets import dataset_root
from segrt.datasets.camvid import SPLITS, CamVid
from segrt.errors import DataError
from segrt.realtime.sources.folder import FolderSource


class CamVidSource(FolderSource):
    """Frames of one split (or one sequence of it) in name order, i.e. time order.

    CamVid's labelled frames are 1 Hz samples; ``fps`` (default 5) is only the playback
    rate of a written video.
    """

    def __init__(self, uri: str, data_root: str | Path | None = None, fps: float = 5.0,
                 **_: object) -> None:
        split, _, sequence = uri.partition("/")
        if split not in SPLITS:
            raise DataError(f"source 'camvid:{uri}': split must be one of {', '.join(SPLITS)}, "
                            "e.g. camvid:val or camvid:val/0016E5")
        root = Path(data_root) if data_root else dataset_root("camvid")
        ds = CamVid(root, split, sequence or None)
        super().__init__(f"camvid:{uri}", fps, paths=[s.image for s in ds.samples])

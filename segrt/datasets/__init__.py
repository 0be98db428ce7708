"""Datasets, torch-free: readers used by training, evaluation, calibration and the live loop."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_root() -> Path:
    """Where ``segrt data`` puts datasets: ``$SEGRT_DATA``, else ``~/.cache/segrt/datasets``."""
    env = os.environ.get("SEGRT_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "segrt" / "datasets"

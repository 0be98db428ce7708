"""The hostile suite: every case runs ``python -m segrt`` as a user would (a subprocess, so
whatever C++ libraries print is seen too) and checks that a refusal is one line, exit 2, with
nothing a user owns changed. Shared helpers live in ``kit.py``."""

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def clip(short_clip: Path) -> Path:
    return short_clip

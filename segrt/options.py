"""Command-line option types and checks shared by the commands (torch-free)."""

from __future__ import annotations

from pathlib import Path

import click

from segrt.errors import SegrtError
from segrt.files import shown

# inference threads: 0 = all cores; more than any machine has is a typo
THREADS = click.IntRange(0, 1024)


def check_output_suffix(output: Path, suffix: str) -> None:
    """A model output must carry its format's suffix: its manifest is named from it."""
    if output.suffix.lower() != suffix:
        raise SegrtError(f"--output {shown(output)}: must end in {suffix} (the manifest beside it takes the "
                         "same name with .json)")

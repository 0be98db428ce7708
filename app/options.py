"""Command-line option types and checks shared by the commands (torch-free)."""

from __future__ import annotations

from pathlib import Path

import click

from segrt.errors import SegrtError
from segrt.files import shown

# inference threads: 0 = all cores; more than any machine has is a typo
THREADS = click.IntRange(0, 1024)


def data_root_option(help: str):  # noqa: A002  (click's own name for it)
    """``--data-root``, a dataset folder; each command says which dataset and where it looks
    without one."""
    return click.option("--data-root", type=click.Path(path_type=Path), default=None, help=help)


def calib_frames_option():
    return click.option("--calib-frames", type=click.IntRange(min=1), default=64, show_default=True,
                        help="INT8 calibration frames, spread evenly over the source.")


def eval_frames_option():
    return click.option("--eval-frames", type=click.IntRange(min=1), default=None,
                        help="Score the accuracy gate on N val frames spread over the split [default: all].")


def check_output_suffix(output: Path, suffix: str) -> None:
    """A model output must carry its format's suffix: its manifest is named from it."""
    if output.suffix.lower() != suffix:
        raise SegrtError(f"--output {shown(output)}: must end in {suffix} (the manifest beside it takes the "
                         "same name with .json)")


class ModelArg(click.ParamType):
    """A model file path or a shipped model's name (``segrt models``), resolved to a file;
    ``prefer`` orders the suffixes tried for a bare name."""

    name = "model"

    def __init__(self, prefer: tuple[str, ...] = (".onnx", ".pt")) -> None:
        self.prefer = prefer

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, Path):
            return value
        from segrt.engines.zoo import resolve_model

        flag = param.opts[0] if param is not None and param.opts and param.opts[0].startswith("-") else \
            (param.name.upper() if param is not None and param.name else "MODEL")
        return resolve_model(value, self.prefer, flag)


MODEL = ModelArg()
CHECKPOINT = ModelArg((".pt",))

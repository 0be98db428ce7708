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


def calib_frames_option(help: str = "INT8 calibration frames, spread evenly over the source."):  # noqa: A002
    return click.option("--calib-frames", type=click.IntRange(min=1), default=64, show_default=True, help=help)


def eval_frames_option():
    return click.option("--eval-frames", type=click.IntRange(min=1), default=None,
                        help="Score the accuracy gate on N val frames spread over the split [default: all].")


def given(*options: str) -> list[str]:
    """The flags of ``options`` (parameter names; those the command lacks are skipped) that were
    given on the command line."""
    ctx = click.get_current_context()
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    return [flags[n] for n in options
            if n in flags and ctx.get_parameter_source(n) is click.core.ParameterSource.COMMANDLINE]


def unused(flags: list[str], why: str, refuse: bool) -> None:
    """Options given that this run will not use: refused in one line (``refuse``: nothing they
    could apply to runs), else a note on stderr (a loop over precisions may pass them to all)."""
    if flags and refuse:
        raise SegrtError(f"{flags[0]} {why}")
    for flag in flags:
        click.echo(f"note: {flag} {why}; ignored", err=True)


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

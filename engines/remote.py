"""Model arguments that are not files: ``triton://HOST:PORT/NAME`` (a model served by Triton)."""

from __future__ import annotations

SCHEMES = ("triton://",)


def is_remote(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEMES)


class RemoteModel(str):
    """A served model's URI, with the few :class:`pathlib.Path` attributes the CLI reads of a
    model argument (``name``, ``stem``, ``suffix``; it is never a file)."""

    @property
    def name(self) -> str:
        return self.split("?")[0].rstrip("/").rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        return self.name

    suffix = ""

    def is_file(self) -> bool:
        return False

    def exists(self) -> bool:
        return False


def model_name(value: object) -> str:
    """The file name of a model path, or the model name of a served model's URI."""
    from pathlib import Path

    return RemoteModel(value).name if is_remote(value) else Path(str(value)).name

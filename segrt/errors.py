"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class SegrtError(Exception):
    """Base class: the message names the file or argument at fault and the fix."""


class ConfigError(SegrtError):
    """A YAML config has an unknown key, a wrong type or a bad value."""


class DataError(SegrtError):
    """A dataset, video or image is missing, unreadable or not what it should be."""


class WriteFailed(DataError):
    """An output could not be written whole (full disk, a vanished folder, …)."""


class ModelError(SegrtError):
    """A model file or its manifest is missing, corrupt or does not match."""


def require_module(module: str, what: str, fix: str) -> None:
    """Raises a one-line :class:`SegrtError` naming the install command when ``module`` (an
    optional dependency that ``what`` needs) is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise SegrtError(f"{what} needs {module}, which is not installed: {fix}")


class Stopped(SystemExit):
    """A signal (SIGTERM, SIGHUP, a second Ctrl-C) ended the command: ``code`` is 128 + the
    signal's number, the way a shell reports it; unfinished outputs are removed on the way out."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(128 + signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type's name when the message is empty),
    at most ``limit`` characters: what a one-line error or a report quotes of a library's."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]

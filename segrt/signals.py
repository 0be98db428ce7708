"""Signals for the CLI: while a command runs, SIGTERM and SIGHUP end it through
:class:`segrt.errors.Stopped`, so every open output removes its temporary on the way out; and a
block of C++ that must not be interrupted (torch's exporter) can hold signals until it ends."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

from segrt.errors import Stopped
from segrt.files import cleanup_temporaries

_ATEXIT = []  # cleanup_temporaries registered with atexit once per process


@contextlib.contextmanager
def signal_cleanup() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP end the command with ``SystemExit(128 +
    signal)``, so every open :func:`atomic_output` removes its temporary on the way out
    (``segrt run`` replaces the SIGTERM handler while its loop runs, to stop after the frame
    in hand). The handlers before it are restored after: only the CLI entry point uses this,
    so importing segrt or calling its Python API never changes a host program's signals."""
    import atexit

    def handler(signum: int, frame: object) -> None:
        raise Stopped(signum)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            previous[sig] = signal.signal(sig, handler)
    if not _ATEXIT:
        atexit.register(cleanup_temporaries)
        _ATEXIT.append(True)
    try:
        yield
    finally:
        for sig, h in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, h)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Holds Ctrl-C, SIGTERM and SIGHUP back while the block runs C++ code that must not be
    interrupted (torch's exporter aborts the process when a signal's exception crosses it),
    then ends the command as that signal would. A second signal ends it at once, temporaries
    removed. Outside the main thread the block runs as it is."""
    import sys
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if caught:
            cleanup_temporaries()
            print(f"error: stopped by {signal.Signals(signum).name}; nothing was written", file=sys.stderr,
                  flush=True)
            os._exit(128 + signum)
        caught.append(signum)
        if sys.stderr.isatty():  # a person waiting at a terminal; logs get the one final line
            print("stopping after this step (again to stop at once)", file=sys.stderr, flush=True)

    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handler) for sig in sigs}
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
    if caught:
        raise Stopped(caught[0])

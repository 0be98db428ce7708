"""``--frames-csv``: one CSV row per frame the loop writes (stage times, capture time, age,
drops, class shares), committed whole when the run ends."""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Sequence
from pathlib import Path

from segrt.errors import WriteFailed
from segrt.files import PendingOutput, write_error

CSV_FIELDS = ("frame", "source_index", "t_capture_s", "read_ms", "preprocess_ms", "infer_ms", "postprocess_ms",
              "render_ms", "write_ms", "age_ms", "dropped_before", "dropped_so_far")


class FrameLog:
    """Per-frame CSV, written to a temporary name and renamed when the run ends (in place for a
    FIFO or /dev/stdout)."""

    def __init__(self, path: Path | None, fields: Sequence[str] = CSV_FIELDS) -> None:
        self.path = path
        self._file = None
        if path is not None:
            self._pending = PendingOutput(path, "frame log")
            try:
                self._file = open(self._pending.tmp, "w", newline="")
            except OSError as exc:
                self._pending.discard()
                raise write_error(path, "frame log", exc) from None
            self._writer = csv.writer(self._file)
            self._writer.writerow(fields)

    def row(self, values: Sequence) -> None:
        if self._file is not None:
            try:
                self._writer.writerow(values)
            except OSError as exc:
                self._file = None
                self._pending.discard()
                raise WriteFailed(f"--frames-csv {self._pending.path}: cannot write ({exc.strerror}); check free "
                                  "space") from None

    def discard(self) -> None:
        """Removes the unfinished log (the run failed or was aborted)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
            self._pending.discard()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                self._pending.discard()
                raise write_error(self._pending.path, "frame log", exc) from None
            finally:
                self._file = None
            self._pending.commit()

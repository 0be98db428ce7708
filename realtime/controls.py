"""What a viewer can change while the loop runs (window keys): shared by the overlay and sinks.

Keys: q/Esc quit, space pause, m next mode, +/- alpha, s snapshot.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

MODES = ("overlay", "mask", "side")


@dataclass
class Controls:
    mode: str = "overlay"        # overlay: blended; mask: colours only; side: frame | colours
    alpha: float = 0.5
    paused: bool = False
    quit: bool = False
    snapshot: bool = False       # set by 's'; the renderer saves the next frame and clears it
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: choose {', '.join(MODES)}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be within 0..1, got {self.alpha}")

    def key(self, code: int) -> None:
        """Applies one key press (an OpenCV waitKey code)."""
        ch = chr(code & 0xFF) if code >= 0 else ""
        with self.lock:
            if ch in ("q", "\x1b"):
                self.quit = True
            elif ch == " ":
                self.paused = not self.paused
            elif ch == "m":
                self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
            elif ch in ("+", "="):
                self.alpha = min(1.0, round(self.alpha + 0.1, 2))
            elif ch in ("-", "_"):
                self.alpha = max(0.0, round(self.alpha - 0.1, 2))
            elif ch == "s":
                self.snapshot = True

"""What every method's run shows and how it stops: progress bars, Ctrl-C, interruption."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any


class Interrupted(Exception):
    """Training stopped by Ctrl-C after saving a checkpoint."""


class StopOnSigint:
    """Turn the first Ctrl-C into a request to stop at the next safe point; a second one
    interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn``; a KeyboardInterrupt it raises becomes a stop request."""
        try:
            fn(*args)
        except KeyboardInterrupt:
            self.requested = True

    def __enter__(self) -> StopOnSigint:
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def bar(iterable: Iterable, total: int, desc: str):
    """A tqdm bar on a terminal; the plain iterable elsewhere (logs stay readable)."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, disable=not sys.stderr.isatty())


class PhaseProgress:
    """For callbacks that report ``{phase, done, total, ...}``: a tqdm bar on a terminal, a
    plain line every ~10% otherwise."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log, self.bar, self.phase, self.next_line = log, None, None, 0.0

    def __call__(self, p: dict[str, Any]) -> None:
        phase = f"{p['phase']} epoch {p['epoch']}/{p['epochs']}" if "epoch" in p else p["phase"]
        if phase != self.phase:
            self.close()
            self.phase, self.next_line = phase, 0.0
            if sys.stderr.isatty():
                from tqdm import tqdm

                self.bar = tqdm(total=p["total"], desc=phase, leave=False)
        if self.bar is not None:
            self.bar.n = p["done"]
            self.bar.set_postfix(img_s=f"{p['images_per_s']:.0f}", acc=p.get("acc_proportion"))
            self.bar.refresh()
        elif p["done"] / p["total"] >= self.next_line:
            self.next_line += 0.1
            self.log(f"{self.phase}: {p['done']}/{p['total']} ({p['images_per_s']:.0f} img/s)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

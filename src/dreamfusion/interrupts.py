"""Ctrl-C and SIGTERM during a run: finish the step, save, then stop.

The first signal only sets a flag that the training loop reads between steps; a second
one raises KeyboardInterrupt at once (the last periodic checkpoint is still on disk).
"""
from __future__ import annotations

import signal
import threading
from types import FrameType


class RunInterrupted(Exception):
    """A run stopped early by a signal, after saving its checkpoint; exit code 128 + signum."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class GracefulStop:
    """Context manager: `requested` becomes the signal number of the first SIGINT/SIGTERM."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_request=None):
        self.requested: int | None = None
        self.on_request = on_request
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signum
        if self.on_request is not None:
            self.on_request(signum)

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():  # signals need it
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name

"""Ctrl-C during a run: stop at the next safe point, with a checkpoint, and say how to resume.

While :func:`stop_on_interrupt` is active (in the main thread), the first Ctrl-C (SIGINT) only
*requests* a stop: training finishes the current batch, writes a checkpoint and raises
:class:`RunInterrupted`; the Brian2 evaluation finishes its current batch of samples and raises it
too (never leaving Brian2 half-way through a ``run()``). A second Ctrl-C stops at once (the last
checkpoint is then the previous one). ``sdsnn-bio run ... --resume`` continues the run from its
checkpoint to the same result as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path

__all__ = ["RunInterrupted", "StopRequest", "stop_on_interrupt"]

logger = logging.getLogger(__name__)


class RunInterrupted(KeyboardInterrupt):
    """The run stopped on Ctrl-C at a safe point; ``checkpoint`` is where it can resume from."""

    def __init__(self, message: str, checkpoint: str | Path | None = None):
        super().__init__(message)
        self.checkpoint = None if checkpoint is None else Path(checkpoint)


class StopRequest:
    """Whether a stop was requested (by Ctrl-C, or by :meth:`request`)."""

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        """Ask the run to stop at its next safe point."""
        self.requested = True


@contextlib.contextmanager
def stop_on_interrupt():
    """Turn the first Ctrl-C into a :class:`StopRequest`; yields the request.

    Outside the main thread (a Dask worker) signals cannot be caught: the request then only
    changes when :meth:`StopRequest.request` is called.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.request()
        logger.warning("Ctrl-C: stopping after the current batch, with a checkpoint "
                       "(press Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)

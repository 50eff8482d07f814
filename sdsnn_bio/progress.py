"""Progress bars for long runs (tqdm), silent when disabled or when output is not a terminal."""

from __future__ import annotations

import contextlib
import logging
import sys

__all__ = ["progress_bar", "ProgressAwareHandler"]


@contextlib.contextmanager
def progress_bar(total: int, description: str, enabled: bool = True, initial: int = 0):
    """A tqdm bar on stderr, disabled unless ``enabled`` and stderr is a terminal."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=description, initial=initial, leave=False,
               disable=not (enabled and sys.stderr.isatty()), dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


class ProgressAwareHandler(logging.Handler):
    """A logging handler that prints above the live progress bars instead of through them.

    Log lines go to stderr through ``tqdm.write``, which clears the bars, prints the line and
    redraws the bars below it; without bars (piped output) it is a plain stderr handler.
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record above the progress bars."""
        from tqdm.auto import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)

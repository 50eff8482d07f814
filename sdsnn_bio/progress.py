"""Progress bars for long runs (tqdm), silent when disabled or when output is not a terminal."""

from __future__ import annotations

import contextlib
import sys

__all__ = ["progress_bar"]


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

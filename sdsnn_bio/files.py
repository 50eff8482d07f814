"""Atomic file writes: results, checkpoints, structures and figures are never seen half written.

Every writer of the package goes through :func:`atomic_open`: the content goes to a temporary file
in the destination's folder, is flushed to disk, and only then replaces the destination with one
``os.replace`` (atomic on POSIX). An interrupted write leaves the previous file intact.

The temporary file is created with mode ``0o666`` filtered by the process umask, exactly like a
file made by :func:`open`; the umask is never changed (changing it, even briefly, would let another
thread create files with the wrong permissions). A killed process can leave a temporary file
``.<name>.<random>.tmp`` behind; :func:`sdsnn_bio.runfolder.remove_orphaned_temporaries` cleans
run folders of them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["atomic_open"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **open_kwargs):
    """Open a temporary file that replaces ``path`` when the ``with`` block succeeds.

    Parameters
    ----------
    path : path
        Destination; its folder is created if needed.
    mode : {"wb", "w"}
        Binary or text.
    **open_kwargs
        Passed to :func:`open` (e.g. ``encoding="utf-8"``, ``newline=""``).

    Yields
    ------
    file object
        Write the content to it. If the block raises, the temporary file is removed and ``path``
        is left as it was.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask, as for open()
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"atomic_open: no free temporary name beside {path}")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

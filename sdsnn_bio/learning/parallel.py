"""Row-block parallelism over threads for the learner's large array operations.

SciPy's sparse products and NumPy's ufuncs release the GIL, so splitting an operation into row
blocks and running the blocks on a few threads uses several cores without copying data. The
results are identical to the single-threaded ones (each output element is computed by one thread,
in the same order).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["RowBlocks", "default_threads"]


def default_threads() -> int:
    """Cores available to this process (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


class RowBlocks:
    """Runs a function on row blocks of arrays, on ``n_threads`` threads.

    Parameters
    ----------
    n_threads : int
        Number of threads (1: run inline, no pool).
    """

    def __init__(self, n_threads: int = 1) -> None:
        if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
            raise ValueError(f"learning.threads: expected an integer >= 1, got {n_threads!r}")
        self.n_threads = n_threads
        self._pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None

    def bounds(self, n_rows: int, blocks_per_thread: int = 1) -> list[tuple[int, int]]:
        """Contiguous row blocks for the worker threads.

        Contiguous ``(start, stop)`` blocks covering ``range(n_rows)``, at most
        ``n_threads * blocks_per_thread`` of them.
        """
        n_blocks = min(self.n_threads * blocks_per_thread, max(n_rows, 1))
        edges = np.linspace(0, n_rows, n_blocks + 1).astype(int)
        return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]

    def map(self, function, n_rows: int, blocks_per_thread: int = 1) -> list:
        """``[function(start, stop) for each block]``, in block order.

        ``blocks_per_thread > 1`` cuts finer blocks that the threads take as they become free,
        so that a thread slowed down (e.g. by another process on its core) does fewer of them.
        """
        blocks = self.bounds(n_rows, blocks_per_thread)
        if self._pool is None or len(blocks) < 2:
            return [function(a, b) for a, b in blocks]
        return list(self._pool.map(lambda block: function(*block), blocks))

    def sparse_matmul(self, matrix, dense: np.ndarray) -> np.ndarray:
        """``matrix @ dense`` for a CSR ``matrix``, split by rows of the result (in their common type)."""
        out = np.empty((matrix.shape[0], dense.shape[1]), dtype=np.result_type(matrix.dtype, dense.dtype))

        def block(a: int, b: int) -> None:
            out[a:b] = matrix[a:b] @ dense

        self.map(block, matrix.shape[0])
        return out

    def close(self) -> None:
        """Shut the worker threads down (later maps run in the calling thread)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __getstate__(self):  # pools cannot be pickled; rebuild on unpickling
        return {"n_threads": self.n_threads}

    def __setstate__(self, state) -> None:
        self.__init__(state["n_threads"])

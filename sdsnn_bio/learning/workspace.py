"""Page-aligned work arrays that a training step reuses from one batch to the next.

A training step of the Numba backend needs a few large arrays that live only for that step: the
``(T, B, N)`` potentials and spikes of every layer, the ``dL/dI`` of the layers above the first,
and the gradients of the weights (2312 x 512 float64 = 9.5 MB for the input projection; the
hidden potentials are 39 MB at T = 300, B = 32, N = 512). Allocated afresh at every step, their
memory comes from wherever the C allocator has it: glibc's ``malloc`` maps any block above its
(dynamic, at most 32 MiB) threshold with a fresh ``mmap`` and unmaps it when freed, so the kernel
faults in, zeroes and (for NumPy's ``MADV_HUGEPAGE`` arrays) compacts the pages again at every
step, and where the arrays land relative to each other (their addresses modulo the 4 KiB page)
depends on the history of the process's heap. Measured (``docs/benchmarks.md``, per-process speed):
13 page faults and 610-680 us of kernel time per sample at T = 300, 11-12 % of the step's CPU time.

:class:`Workspace` keeps one array per name, allocated once on a 4096-byte boundary (so its
offset within a page, the same in every process, is 0) and reused while its shape and type stay
the same. The arrays are the learner's own: they are overwritten by the next step, so nothing
that outlives a step may hold them (:meth:`.Learner.train_step` uses a workspace; its public
``simulate``/``gradients`` return fresh arrays).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Workspace", "aligned_empty", "PAGE_BYTES"]

#: Alignment of every work array: one page of memory (also a multiple of the 64-byte cache line).
PAGE_BYTES = 4096


def aligned_empty(shape: tuple[int, ...], dtype, alignment: int = PAGE_BYTES) -> np.ndarray:
    """An uninitialised C-contiguous array whose first element starts on ``alignment`` bytes.

    (An array without elements has nothing to align.)

    Parameters
    ----------
    shape : tuple of int
        Shape of the array.
    dtype : numpy dtype
        Element type.
    alignment : int
        Byte boundary of the first element (a power of two, at least the element size).
    """
    dtype = np.dtype(dtype)
    if alignment < dtype.itemsize or alignment & (alignment - 1):
        raise ValueError(f"alignment: expected a power of two >= {dtype.itemsize} bytes, got {alignment}")
    size = int(np.prod(shape, dtype=np.int64))
    buffer = np.empty(size * dtype.itemsize + alignment, dtype=np.uint8)
    start = -buffer.ctypes.data % alignment
    return buffer[start:start + size * dtype.itemsize].view(dtype).reshape(shape)


class Workspace:
    """Named work arrays reused across training steps (page-aligned, allocated once per shape)."""

    def __init__(self) -> None:
        self._arrays: dict[tuple, np.ndarray] = {}

    def empty(self, name: tuple | str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """The array ``name`` with this shape and type, contents left from its last use.

        A new page-aligned array replaces the old one when the shape or type differ (e.g. a
        smaller last batch, or a layer resized by development).
        """
        shape = tuple(int(n) for n in shape)
        dtype = np.dtype(dtype)
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._arrays[name] = aligned_empty(shape, dtype)
        return array

    def zeros(self, name: tuple | str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """:meth:`empty`, filled with zeros."""
        array = self.empty(name, shape, dtype)
        array.fill(0)
        return array

    def names(self) -> list:
        """Names of the arrays held."""
        return list(self._arrays)

    def nbytes(self) -> int:
        """Bytes held by the work arrays."""
        return sum(array.nbytes for array in self._arrays.values())

    def clear(self) -> None:
        """Release every work array (they are allocated again on their next use)."""
        self._arrays.clear()

    def __getstate__(self):  # work arrays are not state: a pickled learner carries none
        return {}

    def __setstate__(self, state) -> None:
        self._arrays = {}

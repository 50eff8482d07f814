"""Fused time loops (Numba) for the learner: forward, BPTT with weight gradients, Adam.

Same equations as :mod:`.kernel` (forward), :mod:`.bptt` (backward) and :mod:`.optim` (Adam), but
each layer's whole time loop runs in one compiled call that never builds a ``(T, B, N)`` temporary
it does not return:

* **forward** (:func:`forward_block`, one block of samples per thread): at step ``t`` the input
  current of sample ``b`` is the sum of the weight rows of the presynaptic spikes of ``(t, b)``,
  accumulated from 0 in increasing presynaptic index (the order SciPy's CSR product uses, so the
  potentials are bitwise those of the NumPy path), then::

      u_t = decay * v_{t-1}   if r_t else v_{t-1}
      s_t = (u_t > v_threshold) and r_t and alive
      v_t = v_reset if s_t, else u_t + I_t if r_t, else u_t

* **backward** (:func:`backward_block`, one block of neurons per thread), backwards in time::

      dL/ds_t = W_above dL/dI_t(above)            (or given by the loss for the output layer)
      direct  = sigma'(u_t - v_threshold) * dL/ds_t * r_t + dL/du_t (direct)
      dL/dI_t = (1 - s_t) * r_t * dL/dv_t
      dL/dv_{t-1} = (decay if r_t else 1) * ((1 - s_t) * dL/dv_t + direct)

  and, in the same pass, the gradients of the projection above (``dW_above[n] += dL/dI_t(above)``
  for every spike ``s_t[n]``) and, for the first layer, of the input projection
  (``dW_input[c] += dL/dI_t`` for every input event on channel ``c``: a sparse^T x dense product
  that never materialises ``dL/dI_t``). Blocks own disjoint rows (``dW_above``) or columns
  (``dW_input``), so threads never write the same element.

* **Adam** (:func:`adam_block`): one pass over the rows of a parameter matrix, same operations in
  the same order as :meth:`.optim.Adam._update_block`; :func:`adam_block_restarted` does the same
  with a step size per entry (per-synapse bias correction after a restart, see :mod:`.optim`).

* **shared projections** (a convolution or a dense layer fed by pooled channels): the kernels of
  :mod:`.shared` (``shared_forward_block``, ``shared_backward_block``,
  ``shared_weight_gradient_block``, ``shared_pooled_gradient_block``; equations there).

The functions release the GIL (``nogil``); :class:`~.parallel.RowBlocks` runs the blocks on threads.
Numba is optional: :func:`numba_available` says whether this module can be used, and the NumPy path
(:mod:`.kernel`, :mod:`.bptt`, :mod:`.optim`) is the reference the tests compare it with.
"""

from __future__ import annotations

import importlib.util

import numpy as np

__all__ = ["numba_available", "SURROGATE_CODES", "kernels"]

#: Surrogate names (see :mod:`.surrogate`) as the integer codes the compiled kernels branch on.
SURROGATE_CODES = {"fast_sigmoid": 0, "sigmoid": 1, "arctan": 2, "rectangular": 3}

#: Placeholders for the kernels' array arguments that a call does not use (the flag passed beside
#: each says so): a bool (T, B, N) array (no refractory flags, no dense presynaptic spikes) and a
#: CSR index array (no input projection).
NO_BOOL3 = np.zeros((0, 0, 0), dtype=bool)
NO_INDEX = np.zeros(1, dtype=np.int32)


def forward_outputs(allocate, shape: tuple, dtype, given, refractory: bool) -> tuple:
    """The arrays a forward kernel fills: ``(potential, spikes, not_refractory)``.

    Parameters
    ----------
    allocate : callable
        ``allocate(kind, shape, dtype)`` gives an uninitialised array (``kind``: ``"potential"``,
        ``"spikes"``, ``"not_refractory"``).
    shape : (int, int, int)
        ``(T, B, N)``: steps, samples, neurons.
    dtype : numpy.dtype
        The potentials' floating-point type.
    given : ndarray of bool, shape (T, B, N), or None
        Recorded spikes (reconstruction): returned as the spikes (C-contiguous bool) instead of a
        new array.
    refractory : bool
        Whether the layer has a refractory period (else ``not_refractory`` is :data:`NO_BOOL3`).

    Raises
    ------
    ValueError
        If ``given`` does not have the shape ``shape``.
    """
    potential = allocate("potential", shape, dtype)
    if given is None:
        spikes = allocate("spikes", shape, bool)
    else:
        spikes = np.ascontiguousarray(given, dtype=bool)
        if spikes.shape != shape:
            raise ValueError(f"spikes: expected shape {shape}, got {spikes.shape}")
    not_refractory = allocate("not_refractory", shape, bool) if refractory else NO_BOOL3
    return potential, spikes, not_refractory


_NUMBA_IMPORTS: bool | None = None


def numba_available() -> bool:
    """True if Numba is installed and imports (e.g. supports this NumPy); checked once."""
    global _NUMBA_IMPORTS
    if _NUMBA_IMPORTS is None:
        if importlib.util.find_spec("numba") is None:
            _NUMBA_IMPORTS = False
        else:
            try:
                import numba  # noqa: F401
            except ImportError:
                _NUMBA_IMPORTS = False
            else:
                _NUMBA_IMPORTS = True
    return _NUMBA_IMPORTS


def kernels():
    """The compiled kernels.

    The compiled kernels (Numba is imported on first use; each kernel is compiled on its first
    call, or loaded from Numba's cache).

    Returns the module :mod:`._fused_kernels` (``forward_block``, ``backward_block``,
    ``adam_block``, ``adam_block_restarted``, ``surrogate_times`` and the ``shared_*`` kernels of
    :mod:`.shared`).
    """
    from . import _fused_kernels

    return _fused_kernels

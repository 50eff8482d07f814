"""Compiled (Numba) forward and backward passes of layers fed by shared projections.

A projection with a :class:`~sdsnn_bio.geometry.Geometry` (a convolution, or a dense layer fed by
pooled channels) computes ``I = geometry.forward(s, W)``; the NumPy path (:mod:`sdsnn_bio.geometry`,
:mod:`.kernel`, :mod:`.bptt`) builds that current as a dense product (im2col and BLAS), integrates
it, un-pools the error and runs the surrogate and BPTT as separate passes over ``(T, B, N)``
arrays. With the ``"numba"`` backend the learner uses the kernels of :mod:`._fused_kernels`
instead, which compute the same quantities from the presynaptic **spikes** (event-driven), with
the pooling factor ``f = 1 / pool**2`` and the geometry's event table
(:meth:`~sdsnn_bio.geometry.Geometry.pooled_table`: pooled position ``q`` -> pairs (parameter row
``r``, target position ``p``)):

* forward (:func:`integrate_shared`): ``I_t[p, :] = sum over spikes i of (t, b), entries (r, p) of
  q(i), of f * W[r, :]``, then the LIF update of :mod:`.kernel`, in one call per block of samples;
* BPTT (:func:`backward_shared`): the equations of :mod:`.bptt`, with ``dL/ds_t = f_above *
  dL/dx_above[q_above(n)]`` un-pooled on the fly from the error of the pooled input of the
  projection above, surrogate and recursion in the same pass; ``dL/dI`` is written position-major
  ``(T, B, positions, channels)``;
* weight gradient (:func:`weight_gradient_shared`): ``dL/dW[r, :] = f * sum over spikes i, entries
  (r, p) of q(i), of dL/dI_t[p, :]``: only the presynaptic spikes are visited, the ``m`` spikes of
  one pooling window as one term ``m * dL/dI_t[p, :]`` (samples in blocks, one partial sum per
  block, added in block order); :func:`backward_weight_gradient_shared` accumulates it inside the
  BPTT pass, from each step's ``dL/dI`` row while it is in cache (the learner does so for
  convolutions, whose partial sums are kernel-sized, and stores no ``dL/dI`` for the first layer);
* error of the pooled input (:func:`pooled_gradient_shared`, a :class:`PooledError`): ``dL/dx[q] =
  sum over entries (r, p) of q of (dL/dI_t[p, :] . W[r, :])``: for a dense geometry one BLAS
  product ``dL/dI W^T``; for a convolution a compiled transposed convolution that visits only the
  non-zero errors (with the rectangular surrogate about half of them: neurons whose potential never
  entered its window, and the last steps, which no error has reached) and computes, per target
  position, the product's column ``dL/dI[p, :] W^T`` with the same fused multiply-adds in the same
  order as BLAS, added to the pooled positions in contiguous runs of input channels (kernel rows
  ordered ``(dy, dx, c_in)``, the error kept position-major ``(Hp, Wp, C_in)``), sample rows on
  threads and no ``(rows * positions, k * k * C_in)`` product array in memory.

They give the NumPy path's spikes and gradients up to rounding (sums in another order; tested on
random spikes, against Brian2 spike for spike and against finite differences:
``tests/test_geometry.py``), in float64 or float32 (the arrays' type).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dynamics import LayerDynamics
from ..geometry import Geometry
from .fused import NO_BOOL3, NO_INDEX, SURROGATE_CODES, forward_outputs, kernels
from .kernel import LayerTrace
from .parallel import RowBlocks
from .surrogate import Surrogate

__all__ = ["integrate_shared", "backward_shared", "weight_gradient_shared", "backward_weight_gradient_shared",
           "pooled_gradient_shared", "PooledError"]

#: Sample blocks per thread (threads take them as they become free).
_BLOCKS_PER_THREAD = 4


@dataclass(frozen=True)
class PooledError:
    """The error of a shared projection's pooled input, and where each source unit reads it.

    Attributes
    ----------
    values : ndarray, shape (T, B, Q)
        ``dL/dx`` of the ``Q`` pooled input positions (in the order of ``index``).
    index : ndarray of int64, shape (n_source,)
        Column of ``values`` that each source unit's spikes enter, -1 for the units that pooling
        drops.
    factor : float
        ``1 / pool**2``: ``dL/ds[n] = factor * values[..., index[n]]``.
    """

    values: np.ndarray
    index: np.ndarray
    factor: float

    def unpooled(self) -> np.ndarray:
        """``dL/ds`` of every source unit, (T, B, n_source) (the NumPy path's un-pooling)."""
        scaled = self.values * self.values.dtype.type(self.factor)
        out = np.take(scaled, np.maximum(self.index, 0), axis=2)
        out[:, :, self.index < 0] = 0.0
        return out


def _fresh(kind: str, shape: tuple, dtype) -> np.ndarray:
    """The default allocator of the functions below: a fresh uninitialised array (``kind`` unused)."""
    return np.empty(shape, dtype=dtype)


def _presynaptic(matrix, spikes: np.ndarray | None, n_source: int, what: str):
    """``(indptr, indices, dense spikes, use_dense)`` of a CSR input batch or a layer's bool spikes."""
    if spikes is None:
        if matrix.shape[1] != n_source:
            raise ValueError(f"{what}: the input batch has {matrix.shape[1]} channels, the geometry "
                             f"expects {n_source}")
        return matrix.indptr, matrix.indices, NO_BOOL3, False
    spikes = np.ascontiguousarray(spikes, dtype=bool)
    if spikes.ndim != 3 or spikes.shape[2] != n_source:
        raise ValueError(f"{what}: expected presynaptic spikes (T, B, {n_source}), got {spikes.shape}")
    return NO_INDEX, NO_INDEX, spikes, True


def integrate_shared(matrix, spikes, geometry: Geometry, weight: np.ndarray, dynamics: LayerDynamics,
                     alive: np.ndarray, given, n_steps: int, workers: RowBlocks, allocate=_fresh) -> LayerTrace:
    """Forward pass of a LIF layer fed by a shared projection.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        The input batch, rows ``t*B + b`` (used when ``spikes`` is None).
    spikes : ndarray of bool, shape (T, B, n_source), or None
        The presynaptic layer's spikes.
    geometry : Geometry
    weight : ndarray, shape geometry.parameter_shape
        Parameters the forward pass uses (float64 or float32: the computation's type).
    dynamics : LayerDynamics
    alive : ndarray of bool, shape (n_target,)
    given : ndarray of bool, shape (T, B, n_target), or None
        Recorded spikes (reconstruction) instead of the threshold's.
    n_steps : int
    workers : RowBlocks
    allocate : callable, optional
        ``allocate(kind, shape, dtype)`` gives the uninitialised output arrays (``"potential"``,
        ``"spikes"``, ``"not_refractory"``, ``"counts"``); default: fresh arrays. The learner's training step
        passes its :class:`~.workspace.Workspace`'s.

    Returns
    -------
    LayerTrace
    """
    dtype = np.dtype(np.float32 if weight.dtype == np.float32 else np.float64)
    real = dtype.type
    indptr, indices, pre_spikes, dense = _presynaptic(matrix, spikes, geometry.n_source, "shared forward")
    n_samples = pre_spikes.shape[1] if dense else matrix.shape[0] // n_steps
    shape = (n_steps, n_samples, geometry.n_target)
    weight_scaled = np.ascontiguousarray(np.asarray(weight, dtype=dtype) * real(geometry.factor))
    refractory = dynamics.refractory_steps > 0
    potential, out_spikes, not_refractory = forward_outputs(allocate, shape, dtype, given, refractory)
    counts = allocate("counts", shape[1:], np.int64)
    counts.fill(0)
    alive = np.ascontiguousarray(alive, dtype=bool)
    source_pooled = geometry.source_pooled()
    table = geometry.pooled_table()
    forward_block = kernels().shared_forward_block

    def block(b0: int, b1: int) -> None:
        forward_block(indptr, indices, pre_spikes, dense, n_samples, source_pooled, *table, weight_scaled,
                      b0, b1, real(dynamics.decay), real(dynamics.threshold), real(dynamics.reset),
                      int(dynamics.refractory_steps), alive, out_spikes, given is not None,
                      potential, out_spikes, not_refractory, counts)

    workers.map(block, n_samples, _BLOCKS_PER_THREAD)
    return LayerTrace(potential, out_spikes, not_refractory if refractory else None, counts)


def backward_shared(trace: LayerTrace, dynamics: LayerDynamics, surrogate: Surrogate, geometry: Geometry,
                    grad_spikes: np.ndarray | None, grad_potential: np.ndarray | None,
                    pooled_error: PooledError | None, workers: RowBlocks, allocate=_fresh) -> np.ndarray:
    """``dL/dI`` of a layer fed by ``geometry``, position-major (T, B, positions, channels).

    Parameters
    ----------
    trace : LayerTrace
        The layer's forward pass (its potentials' type is the computation's).
    dynamics : LayerDynamics
    surrogate : Surrogate
    geometry : Geometry
        The projection *into* this layer (sets the output layout).
    grad_spikes, grad_potential : ndarray, shape (T, B, N), or None
        ``dL/ds_t`` and the direct ``dL/du_t``, as :func:`.bptt.backward_layer` takes them.
    pooled_error : PooledError or None
        Instead of ``grad_spikes``: the error of the pooled input of the shared projection above
        (un-pooled inside the kernel).
    workers : RowBlocks
    allocate : callable, optional
        As in :func:`integrate_shared` (kind ``"grad_currents"``).
    """
    return _backward(trace, dynamics, surrogate, geometry, grad_spikes, grad_potential, pooled_error, workers,
                     allocate, None, True, None)[0]


def backward_weight_gradient_shared(trace: LayerTrace, dynamics: LayerDynamics, surrogate: Surrogate,
                                    geometry: Geometry, grad_spikes: np.ndarray | None,
                                    grad_potential: np.ndarray | None, pooled_error: PooledError | None,
                                    matrix, spikes, workers: RowBlocks, allocate=_fresh,
                                    keep_grad_currents: bool = True, weight_below: np.ndarray | None = None,
                                    ) -> tuple[np.ndarray | None, np.ndarray, PooledError | None]:
    """:func:`backward_shared`, :func:`weight_gradient_shared` and :func:`pooled_gradient_shared` in one pass.

    Each step's ``dL/dI`` row is scattered over the presynaptic spikes of that step, and (with
    ``weight_below``, a convolution) sent through the transposed convolution to the pooled input,
    while it is in cache, so ``dL/dI`` need not be stored at all (``keep_grad_currents=False``).

    Parameters
    ----------
    trace, dynamics, surrogate, geometry, grad_spikes, grad_potential, pooled_error, workers, allocate
        As in :func:`backward_shared`.
    matrix, spikes
        The presynaptic input, as in :func:`weight_gradient_shared`.
    keep_grad_currents : bool
        Whether ``dL/dI`` is returned.
    weight_below : ndarray, shape geometry.parameter_shape, or None
        For a convolution: the parameters the error is sent back through, as
        :func:`pooled_gradient_shared` takes them (allocator kind ``"pooled_error"``).

    Returns
    -------
    grad_currents : ndarray, shape (T, B, positions, channels), or None
        ``dL/dI`` (None unless ``keep_grad_currents``).
    grad_weight : ndarray, shape geometry.parameter_shape
        ``dL/dW`` of the projection into the layer (partial sums per block of samples, added in
        block order).
    pooled_error : PooledError or None
        The error of the pooled input (None without ``weight_below``).
    """
    return _backward(trace, dynamics, surrogate, geometry, grad_spikes, grad_potential, pooled_error, workers,
                     allocate, (matrix, spikes), keep_grad_currents, weight_below)


def _backward(trace, dynamics, surrogate, geometry, grad_spikes, grad_potential, pooled_error, workers, allocate,
              presynaptic, keep_grad_currents, weight_below):
    """The BPTT kernel's call (:func:`backward_shared`, :func:`backward_weight_gradient_shared`)."""
    potential = np.ascontiguousarray(trace.potential)
    dtype = potential.dtype
    real = dtype.type
    n_steps, n_samples, n_neurons = potential.shape
    if n_neurons != geometry.n_target:
        raise ValueError(f"shared backward: the layer has {n_neurons} neurons, the geometry {geometry.n_target}")
    spikes = np.ascontiguousarray(trace.spikes, dtype=bool)
    has_refractory = trace.not_refractory is not None
    not_refractory = np.ascontiguousarray(trace.not_refractory, dtype=bool) if has_refractory else NO_BOOL3
    none3 = np.zeros((0, 0, 0), dtype)
    has_grad_spikes = grad_spikes is not None
    grad_spikes = np.ascontiguousarray(grad_spikes, dtype=dtype) if has_grad_spikes else none3
    has_grad_potential = grad_potential is not None
    grad_potential = np.ascontiguousarray(grad_potential, dtype=dtype) if has_grad_potential else none3
    has_pooled = pooled_error is not None
    if has_pooled:
        grad_pooled = np.ascontiguousarray(pooled_error.values, dtype=dtype)
        source_pooled, factor = pooled_error.index, real(pooled_error.factor)
        if source_pooled.shape != (n_neurons,):
            raise ValueError(f"shared backward: the projection above reads {source_pooled.size} units, the "
                             f"layer has {n_neurons}")
    else:
        grad_pooled, source_pooled, factor = none3, np.zeros(0, np.int64), real(1.0)
    layout = (geometry.n_positions, geometry.out_channels)
    if keep_grad_currents:
        grad_currents = allocate("grad_currents", (n_steps, n_samples) + layout, dtype)
    elif presynaptic is None:  # unreachable from the public functions
        raise ValueError("shared backward: dL/dI must be kept when no weight gradient is computed")
    else:
        grad_currents = np.zeros((0, 0) + layout, dtype)
    has_input = presynaptic is not None
    if has_input:
        indptr, indices, pre_spikes, dense = _presynaptic(*presynaptic, geometry.n_source, "shared gradient")
        if dense and pre_spikes.shape[:2] != (n_steps, n_samples):
            raise ValueError(f"shared gradient: presynaptic spikes {pre_spikes.shape[:2]} for a layer of "
                             f"{(n_steps, n_samples)} steps and samples")
        input_pooled = geometry.source_pooled()
        table = geometry.pooled_table()
    else:
        indptr, indices, pre_spikes, dense = NO_INDEX, NO_INDEX, NO_BOOL3, False
        input_pooled, table = np.zeros(0, np.int64), (np.zeros(1, np.int64),) * 3
    has_below = weight_below is not None
    c_in, hp, wp = geometry.pooled_shape
    if has_below:
        if geometry.kind != "convolution":
            raise ValueError("shared backward: the error of the input is computed in the BPTT pass for "
                             f"convolutions only, got a {geometry.kind} geometry")
        weight_t = _kernel_by_offset(geometry, weight_below, dtype)
        grad_below = allocate("pooled_error", (n_steps, n_samples, hp * wp * c_in), dtype)
        out_width = geometry.target_shape[2]
    else:
        weight_t, grad_below, out_width = np.zeros((1, 1), dtype), none3, 1
    backward_block = kernels().shared_backward_block
    code, scale = SURROGATE_CODES[surrogate.name], real(surrogate.scale)

    def block(b0: int, b1: int):
        partial = np.zeros(geometry.parameter_shape if has_input else (0, 0), dtype=dtype)
        backward_block(potential, spikes, not_refractory, has_refractory, real(dynamics.decay),
                       real(dynamics.threshold), code, scale, grad_spikes, has_grad_spikes,
                       grad_pooled, has_pooled, source_pooled, factor,
                       grad_potential, has_grad_potential, grad_currents, keep_grad_currents,
                       indptr, indices, pre_spikes, dense, n_samples, input_pooled, *table, partial, has_input,
                       weight_t, geometry.kernel_size, geometry.padding, hp, wp, out_width,
                       grad_below, has_below, b0, b1)
        return partial

    partials = workers.map(block, n_samples, _BLOCKS_PER_THREAD)
    return ((grad_currents if keep_grad_currents else None),
            _summed(partials, geometry, dtype) if has_input else None,
            _position_major_error(geometry, grad_below) if has_below else None)


def _summed(partials: list, geometry: Geometry, dtype) -> np.ndarray:
    """Per-block partial gradients added in block order, times the pooling factor (zeros: no block)."""
    total = np.zeros(geometry.parameter_shape, dtype=dtype)
    for partial in partials:
        total += partial
    total *= np.dtype(dtype).type(geometry.factor)
    return total


def weight_gradient_shared(matrix, spikes, geometry: Geometry, grad_currents: np.ndarray,
                           workers: RowBlocks) -> np.ndarray:
    """``dL/dW`` (geometry.parameter_shape) from the presynaptic spikes and position-major ``dL/dI``.

    ``matrix`` (CSR input batch) or ``spikes`` (bool (T, B, n_source)) as in :func:`integrate_shared`.
    """
    indptr, indices, pre_spikes, dense = _presynaptic(matrix, spikes, geometry.n_source, "shared gradient")
    grad_currents = np.ascontiguousarray(grad_currents)
    n_samples = grad_currents.shape[1]
    source_pooled = geometry.source_pooled()
    table = geometry.pooled_table()
    gradient_block = kernels().shared_weight_gradient_block

    def block(b0: int, b1: int) -> np.ndarray:
        partial = np.zeros(geometry.parameter_shape, dtype=grad_currents.dtype)
        gradient_block(indptr, indices, pre_spikes, dense, n_samples, source_pooled, *table, grad_currents,
                       b0, b1, partial)
        return partial

    return _summed(workers.map(block, n_samples), geometry, grad_currents.dtype)


def pooled_gradient_shared(geometry: Geometry, grad_currents: np.ndarray, weight: np.ndarray,
                           workers: RowBlocks, allocate=_fresh) -> PooledError:
    """``dL/dx`` of the pooled input from position-major ``dL/dI`` (T, B, positions, channels).

    ``weight``: the parameters the error is sent back through (the learner's latent weights of
    pruned sources included). The layer below un-pools it (:func:`backward_shared`, or
    :meth:`PooledError.unpooled`). A dense geometry's error is channel-major (its parameter rows'
    order), a convolution's position-major (``(py * Wp + px) * C_in + c``). ``allocate``: as in
    :func:`integrate_shared` (kind ``"pooled_error"``).
    """
    n_steps, n_samples, n_positions, n_channels = grad_currents.shape
    dtype = grad_currents.dtype
    flat = grad_currents.reshape(-1, n_channels)
    rows = n_steps * n_samples
    c_in, hp, wp = geometry.pooled_shape
    source_pooled = geometry.source_pooled()
    if geometry.kind == "dense":  # one position, parameter rows = pooled positions: a plain product
        values = allocate("pooled_error", (rows, c_in * hp * wp), dtype)
        np.matmul(flat, np.asarray(weight, dtype=dtype).T, out=values)
        return PooledError(values.reshape(n_steps, n_samples, -1), source_pooled, geometry.factor)
    weight_t = _kernel_by_offset(geometry, weight, dtype)
    grad_pooled = allocate("pooled_error", (rows, hp * wp * c_in), dtype)
    by_row = grad_currents.reshape(rows, n_positions, n_channels)
    transposed = kernels().shared_pooled_gradient_block
    out_w = geometry.target_shape[2]

    def block(s0: int, s1: int) -> None:
        transposed(by_row, weight_t, geometry.kernel_size, geometry.padding, hp, wp, out_w, grad_pooled, s0, s1)

    workers.map(block, rows, _BLOCKS_PER_THREAD)
    return _position_major_error(geometry, grad_pooled.reshape(n_steps, n_samples, -1))


def _kernel_by_offset(geometry: Geometry, weight: np.ndarray, dtype) -> np.ndarray:
    """A convolution's kernel transposed, ``(C_out, k * k * C_in)``, columns ordered ``(dy, dx, c_in)``.

    Kernel rows reordered (c_in, dy, dx) -> (dy, dx, c_in): a kernel offset's input channels are
    a contiguous run, as in the position-major error of the pooled input.
    """
    c_in, k, n_channels = geometry.pooled_shape[0], geometry.kernel_size, geometry.out_channels
    return np.ascontiguousarray(
        np.asarray(weight, dtype=dtype).reshape(c_in, k * k, n_channels).transpose(2, 1, 0).reshape(n_channels, -1))


def _position_major_error(geometry: Geometry, values: np.ndarray) -> PooledError:
    """A convolution's pooled error ``values`` (T, B, Hp * Wp * C_in), with each source unit's column."""
    c_in, hp, wp = geometry.pooled_shape
    source_pooled = geometry.source_pooled()
    # Source unit -> position-major column: q = (c * Hp + py) * Wp + px -> (py * Wp + px) * C_in + c.
    channel, position = np.divmod(source_pooled, hp * wp)
    index = np.where(source_pooled >= 0, position * c_in + channel, -1)
    return PooledError(values, index, geometry.factor)

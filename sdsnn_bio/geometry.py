"""Projection geometries: how a projection's shared weights map onto synapses (NumPy only).

A fully-connected projection stores one weight per synapse: ``weight[i, j]`` is the synapse from
neuron ``i`` to neuron ``j`` (no geometry, :class:`~sdsnn_bio.structure.Projection` with
``geometry=None``). A projection with a :class:`Geometry` stores its *parameters* in the same 2-D
arrays (weight, existence mask, spine state), but one parameter serves many synapses:

``"convolution"``
    Parameter array of shape ``(C_in * k * k, C_out)``: row ``(c_in * k + dy) * k + dx`` and column
    ``c_out`` hold the kernel element ``K[c_out, c_in, dy, dx]`` (PyTorch's ``Conv2d`` weight,
    transposed and flattened). With input ``x`` of shape ``(C_in, H, W)`` zero-padded by ``p`` and
    stride 1, the postsynaptic current of neuron ``(c_out, y, x)`` is::

        I[c_out, y, x] = sum over c_in, dy, dx of K[c_out, c_in, dy, dx] * x[c_in, y + dy - p, x + dx - p]

``"dense"``
    Parameter array of shape ``(C * H * W, n_target)``: a fully-connected layer fed by a population
    of channels (flattened channel-major, as ``torch.flatten``), e.g. the first fully-connected layer
    of an SCNN.

**Average pooling is folded into the projection that follows it** (``pool = s``: windows of
``s x s`` positions with stride ``s``, trailing rows and columns dropped as ``avg_pool2d`` does).
The released SCNNs pool the *spikes* of a convolutional layer (``F.avg_pool2d(spikes, 2)``) and
feed the pooled values, 0, 1/4, ..., 1, straight into the next layer: there is no pooling neuron.
So the next layer's input is ``x = pool(s)`` and a synapse from spiking neuron ``(c, y, x)`` to a
target neuron carries ``w = K / s**2``: each kernel element (or dense weight) is shared by the
``s**2`` synapses of its pooling window. Pooling as a population of neurons would add a spiking
layer that the released networks do not have.

Each synapse therefore knows its parameter (``parameter_index``, the flat index into the
``(rows, cols)`` arrays, the Brian2 variable ``kernel_index``) and its factor ``1 / s**2``
(:meth:`Geometry.synapses`); the learner sums the gradients of all synapses that share a parameter
(:meth:`Geometry.backward`), and development acts on parameters: spine ranges per kernel weight,
regeneration per kernel element, neuron importance and pruning per **channel** (a pruned channel
silences all its positions; :meth:`Geometry.row_channel` maps parameter rows to the source channel
they read).

The compiled learner (:mod:`sdsnn_bio.learning.shared`) reads the same operator as event tables
(:meth:`Geometry.pooled_table`, :meth:`Geometry.source_pooled`): which parameter rows a spike adds
to which target positions.

Adding a projection type: a new ``kind`` in :data:`KINDS`, its branch in every method of
:class:`Geometry` (``target_shape``, ``parameter_shape``, ``row_channel``, ``synapses``,
``forward``, ``backward``, ``n_positions``, ``_list_event_tables``) and a Brian2 vs kernel
spike-for-spike test (both backends) plus a finite-difference test in ``tests/test_geometry.py``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["Geometry", "KINDS", "SharedSynapses"]

#: Projection kinds with shared parameters (see the module docstring).
KINDS = ("convolution", "dense")

#: A convolution's forward and backward passes take the samples in blocks whose im2col array holds
#: about this many bytes (bounded memory, cache-friendly BLAS products).
_CHUNK_BYTES = 32 << 20


def _positive_int(owner: str, name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{owner}.{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SharedSynapses:
    """The synapses of a geometry, one entry per (presynaptic, postsynaptic) neuron pair.

    Attributes
    ----------
    pre, post : ndarray of int64
        Presynaptic and postsynaptic neuron indices (channel-major flat positions).
    parameter_index : ndarray of int64
        Flat index of each synapse's parameter in the ``(rows, cols)`` arrays (row-major).
    factor : float
        Every synapse's weight is ``factor * parameter`` (``1 / pool**2``).
    """

    pre: np.ndarray
    post: np.ndarray
    parameter_index: np.ndarray
    factor: float


@dataclass(frozen=True)
class Geometry:
    """Shared-parameter connectivity of one projection (see the module docstring).

    Parameters
    ----------
    kind : {"convolution", "dense"}
    source_shape : tuple of int
        ``(channels, height, width)`` of the presynaptic population.
    out_channels : int
        Convolution: output channels; dense: target neurons.
    kernel_size : int
        Convolution: side ``k`` of the square kernel (dense: 1).
    padding : int
        Convolution: zeros added on every side of the (pooled) input (dense: 0).
    pool : int
        Average pooling window and stride applied to the presynaptic spikes first (1: none).
    """

    kind: str
    source_shape: tuple
    out_channels: int
    kernel_size: int = 1
    padding: int = 0
    pool: int = 1

    def __post_init__(self) -> None:
        owner = "Geometry"
        if self.kind not in KINDS:
            raise ValueError(f"{owner}.kind: expected one of {list(KINDS)}, got {self.kind!r}")
        shape = tuple(self.source_shape)
        if len(shape) != 3:
            raise ValueError(
                f"{owner}.source_shape: expected (channels, height, width), got {self.source_shape!r}"
            )
        object.__setattr__(
            self, "source_shape", tuple(_positive_int(owner, "source_shape", v) for v in shape)
        )
        _positive_int(owner, "out_channels", self.out_channels)
        _positive_int(owner, "kernel_size", self.kernel_size)
        _positive_int(owner, "padding", self.padding, low=0)
        _positive_int(owner, "pool", self.pool)
        if self.kind == "dense" and (self.kernel_size != 1 or self.padding != 0):
            raise ValueError(
                f"{owner}: a dense geometry has kernel_size 1 and padding 0, got "
                f"kernel_size={self.kernel_size}, padding={self.padding}"
            )
        _, height, width = self.pooled_shape
        if height < 1 or width < 1:
            raise ValueError(
                f"{owner}.pool: a {self.pool}x{self.pool} pooling of a {shape[1]}x{shape[2]} input "
                "leaves no position"
            )
        if self.kind == "convolution":
            out_h, out_w = self.target_shape[1:]
            if out_h < 1 or out_w < 1:
                raise ValueError(
                    f"{owner}.kernel_size: a {self.kernel_size}x{self.kernel_size} kernel with padding "
                    f"{self.padding} does not fit a {height}x{width} input"
                )

    # ------------------------------------------------------------------ shapes
    @property
    def pooled_shape(self) -> tuple[int, int, int]:
        """``(C, H // pool, W // pool)``: the input the parameters see."""
        c, h, w = self.source_shape
        return c, h // self.pool, w // self.pool

    @property
    def n_source(self) -> int:
        """Number of source units (``prod(source_shape)``)."""
        return int(np.prod(self.source_shape))

    @property
    def target_shape(self) -> tuple[int, ...]:
        """``(C_out, H_out, W_out)`` (convolution) or ``(n_target,)`` (dense)."""
        if self.kind == "dense":
            return (self.out_channels,)
        _, h, w = self.pooled_shape
        side = 2 * self.padding - self.kernel_size + 1
        return self.out_channels, h + side, w + side

    @property
    def n_target(self) -> int:
        """Number of target units (``prod(target_shape)``)."""
        return int(np.prod(self.target_shape))

    @property
    def parameter_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the weight, existence and spine arrays."""
        c, h, w = self.pooled_shape
        if self.kind == "dense":
            return c * h * w, self.out_channels
        return c * self.kernel_size ** 2, self.out_channels

    @property
    def n_synapses(self) -> int:
        """Number of synapses :meth:`synapses` lists (computed without listing them)."""
        c_in, hp, wp = self.pooled_shape
        per_window = self.pool ** 2
        if self.kind == "dense":
            return c_in * hp * wp * per_window * self.out_channels
        k, p = self.kernel_size, self.padding
        _, out_h, out_w = self.target_shape

        def pairs(out: int, size: int) -> int:  # (output position, kernel offset) inside the input
            return sum(max(0, min(out, size + p - d) - max(0, p - d)) for d in range(k))

        return c_in * self.out_channels * pairs(out_h, hp) * pairs(out_w, wp) * per_window

    @property
    def factor(self) -> float:
        """Weight of a synapse per unit parameter: ``1 / pool**2``."""
        return 1.0 / self.pool ** 2

    def row_channel(self) -> np.ndarray:
        """Source channel read by each parameter row, shape (rows,)."""
        rows = self.parameter_shape[0]
        c = self.source_shape[0]
        return np.repeat(np.arange(c), rows // c)

    def to_array(self) -> np.ndarray:
        """``[kind, C, H, W, out_channels, kernel_size, padding, pool]`` as int64 (for ``.npz``)."""
        return np.array([KINDS.index(self.kind), *self.source_shape, self.out_channels,
                         self.kernel_size, self.padding, self.pool], dtype=np.int64)

    @classmethod
    def from_array(cls, values) -> "Geometry":
        """The geometry stored by :meth:`to_array` (8 integers)."""
        values = [int(v) for v in np.asarray(values).ravel()]
        if len(values) != 8 or not 0 <= values[0] < len(KINDS):
            raise ValueError(f"Geometry.from_array: expected 8 integers [kind, C, H, W, ...], got {values}")
        return cls(KINDS[values[0]], tuple(values[1:4]), *values[4:])

    # ------------------------------------------------------------------ synapses
    def synapses(self) -> SharedSynapses:
        """Every potential synapse, sorted by (pre, post).

        Every potential synapse, sorted by (pre, post) (read-only arrays, listed once per
        geometry and cached).
        """
        return _listed_synapses(self)

    def _list_synapses(self) -> SharedSynapses:
        c_in, h, w = self.source_shape
        _, hp, wp = self.pooled_shape
        s = self.pool
        # Spiking neurons that a pooling window reads: (c, py*s + a, px*s + b).
        pooled = np.arange(c_in * hp * wp)
        pc, rem = np.divmod(pooled, hp * wp)
        py, px = np.divmod(rem, wp)
        offsets = np.arange(s)
        window_y = py[:, None, None] * s + offsets[None, :, None]  # (pooled, s, 1)
        window_x = px[:, None, None] * s + offsets[None, None, :]  # (pooled, 1, s)
        window = (pc[:, None, None] * h + window_y) * w + window_x  # (pooled, s, s)
        window = window.reshape(pooled.size, s * s)
        cols = self.parameter_shape[1]
        if self.kind == "dense":
            # Pooled position q feeds every target neuron t through parameter (q, t).
            pairs_q = np.repeat(pooled, cols)
            pairs_t = np.tile(np.arange(cols), pooled.size)
            parameter = pairs_q * cols + pairs_t
        else:
            k, p = self.kernel_size, self.padding
            c_out, out_h, out_w = self.target_shape
            qs, ts, ps = [], [], []
            y, x = np.meshgrid(np.arange(out_h), np.arange(out_w), indexing="ij")
            y, x = y.ravel(), x.ravel()
            for ci in range(c_in):
                for dy in range(k):
                    for dx in range(k):
                        iy, ix = y + dy - p, x + dx - p
                        inside = (iy >= 0) & (iy < hp) & (ix >= 0) & (ix < wp)
                        q = (ci * hp + iy[inside]) * wp + ix[inside]
                        position = y[inside] * out_w + x[inside]
                        row = (ci * k + dy) * k + dx
                        for co in range(c_out):
                            qs.append(q)
                            ts.append(co * out_h * out_w + position)
                            ps.append(np.full(q.size, row * cols + co))
            pairs_q = np.concatenate(qs)
            pairs_t = np.concatenate(ts)
            parameter = np.concatenate(ps)
        pre = window[pairs_q].ravel()
        post = np.repeat(pairs_t, s * s)
        parameter = np.repeat(parameter, s * s)
        order = np.lexsort((post, pre))
        arrays = [pre[order].astype(np.int64), post[order].astype(np.int64),
                  parameter[order].astype(np.int64)]
        for array in arrays:
            array.setflags(write=False)
        return SharedSynapses(*arrays, self.factor)

    # ------------------------------------------------------------------ event tables
    @property
    def n_positions(self) -> int:
        """Target positions per output channel: ``H_out * W_out`` (convolution) or 1 (dense)."""
        if self.kind == "dense":
            return 1
        return int(np.prod(self.target_shape[1:]))

    def source_pooled(self) -> np.ndarray:
        """Pooled input position ``q`` read by each source unit, shape (n_source,), int64.

        ``q = (c * Hp + y // pool) * Wp + x // pool`` for the unit ``(c, y, x)``; -1 for the
        trailing rows and columns that pooling drops (read-only, cached per geometry).
        """
        return _event_tables(self)[0]

    def pooled_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What each pooled input position feeds: CSR ``(indptr, rows, positions)``, int64.

        Entries ``indptr[q]:indptr[q + 1]`` list the pairs (parameter row, target position) of the
        pooled position ``q``: a unit value at ``q`` adds the parameter row ``rows[e]`` (all output
        channels) to the currents of target position ``positions[e]`` (``oy * W_out + ox``;
        always 0 for a dense geometry, whose row is ``q`` itself). Convolution: the row of kernel
        offset ``(dy, dx)`` of ``q = (c, py, px)`` is ``(c * k + dy) * k + dx`` and its position
        ``(py - dy + p, px - dx + p)``, if inside the output. Sorted by ``q``, then row. The
        compiled shared kernels (:mod:`sdsnn_bio.learning.fused`) scatter a spike's rows with it
        (forward, weight gradient) and gather a pooled position's error through it.
        """
        return _event_tables(self)[1:]

    def _list_event_tables(self):
        c_in, h, w = self.source_shape
        _, hp, wp = self.pooled_shape
        s = self.pool
        channel, y, x = np.unravel_index(np.arange(c_in * h * w), (c_in, h, w))
        inside = (y // s < hp) & (x // s < wp)
        source_pooled = np.where(inside, (channel * hp + y // s) * wp + x // s, -1).astype(np.int64)
        n_pooled = c_in * hp * wp
        if self.kind == "dense":
            indptr = np.arange(n_pooled + 1, dtype=np.int64)
            rows = np.arange(n_pooled, dtype=np.int64)
            positions = np.zeros(n_pooled, dtype=np.int64)
        else:
            k, p = self.kernel_size, self.padding
            _, out_h, out_w = self.target_shape
            pooled_c, py, px = np.unravel_index(np.arange(n_pooled), (c_in, hp, wp))
            qs, rows, positions = [], [], []
            for dy in range(k):
                for dx in range(k):
                    oy, ox = py - dy + p, px - dx + p
                    valid = (oy >= 0) & (oy < out_h) & (ox >= 0) & (ox < out_w)
                    qs.append(np.flatnonzero(valid))
                    rows.append(((pooled_c * k + dy) * k + dx)[valid])
                    positions.append((oy * out_w + ox)[valid])
            qs, rows, positions = (np.concatenate(a).astype(np.int64) for a in (qs, rows, positions))
            order = np.lexsort((rows, qs))
            qs, rows, positions = qs[order], rows[order], positions[order]
            indptr = np.zeros(n_pooled + 1, dtype=np.int64)
            np.cumsum(np.bincount(qs, minlength=n_pooled), out=indptr[1:])
        arrays = (source_pooled, indptr, rows, positions)
        for array in arrays:
            array.setflags(write=False)
        return arrays

    # ------------------------------------------------------------------ linear operator
    def _pool(self, spikes: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Average pooling of ``(B, C*H*W)`` spikes (bool or float) into ``(B, C, Hp, Wp)`` floats.

        The ``s * s`` strided slices of each window are added in ``dtype`` (spike counts, exact in
        any order) and the sum is multiplied by ``1 / s**2`` once, as ``avg_pool2d`` does.
        """
        c, h, w = self.source_shape
        _, hp, wp = self.pooled_shape
        s = self.pool
        x = spikes.reshape(-1, c, h, w)
        if s == 1:
            return x.astype(dtype, copy=False)
        pooled = np.zeros((x.shape[0], c, hp, wp), dtype=dtype)
        for a in range(s):
            for b in range(s):
                np.add(pooled, x[:, :, a: hp * s: s, b: wp * s: s], out=pooled)
        pooled *= self.factor
        return pooled

    def _unpool(self, grad: np.ndarray) -> np.ndarray:
        """Adjoint of :meth:`_pool`: ``(B, C, Hp, Wp)`` to ``(B, C*H*W)``."""
        c, h, w = self.source_shape
        _, hp, wp = self.pooled_shape
        s = self.pool
        if s == 1:
            return grad.reshape(grad.shape[0], -1)
        scaled = grad * self.factor
        trailing = hp * s != h or wp * s != w
        out = (np.zeros if trailing else np.empty)((grad.shape[0], c, h, w), dtype=grad.dtype)
        for a in range(s):
            for b in range(s):
                out[:, :, a: hp * s: s, b: wp * s: s] = scaled
        return out.reshape(grad.shape[0], -1)

    def _offsets(self):
        """Each kernel offset ``(dy, dx)`` with the output and input positions it pairs.

        Yields ``dy, dx, (out_rows, out_cols), (in_rows, in_cols)`` (slices): the output positions
        whose input lies inside the (unpadded) pooled input, and the input positions they read.
        """
        k, p = self.kernel_size, self.padding
        _, hp, wp = self.pooled_shape
        _, out_h, out_w = self.target_shape

        def span(d: int, out: int, size: int) -> tuple[slice, slice]:
            first, last = max(0, p - d), min(out, size + p - d)
            return slice(first, max(first, last)), slice(first + d - p, max(first, last) + d - p)

        for dy in range(k):
            out_y, in_y = span(dy, out_h, hp)
            for dx in range(k):
                out_x, in_x = span(dx, out_w, wp)
                yield dy, dx, (out_y, out_x), (in_y, in_x)

    def _columns(self, pooled: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Im2col of the padded input, transposed.

        Shape ``(C_in * k * k, B * H_out * W_out)``: row ``(c_in, dy, dx)`` (the parameter rows'
        order), column ``(b, y, x)``; built from ``k * k`` slice copies (zero padding never
        materialised), so that the convolution is one BLAS product with the ``(rows, cols)``
        parameters.
        """
        k = self.kernel_size
        n, c_in = pooled.shape[:2]
        _, out_h, out_w = self.target_shape
        columns = np.zeros((c_in, k, k, n, out_h, out_w), dtype=dtype)
        for dy, dx, (out_y, out_x), (in_y, in_x) in self._offsets():
            columns[:, dy, dx, :, out_y, out_x] = pooled[:, :, in_y, in_x].transpose(1, 0, 2, 3)
        return columns.reshape(c_in * k * k, n * out_h * out_w)

    def _chunks(self, n: int):
        """Sample blocks whose im2col array stays near :data:`_CHUNK_BYTES`."""
        _, out_h, out_w = self.target_shape
        per_sample = self.parameter_shape[0] * out_h * out_w * 8
        size = max(1, _CHUNK_BYTES // per_sample)
        for start in range(0, n, size):
            yield start, min(n, start + size)

    def _kernel(self, weight: np.ndarray) -> np.ndarray:
        """The parameters as ``(C_in, k, k, C_out)``."""
        k = self.kernel_size
        return weight.reshape(self.source_shape[0], k, k, self.out_channels)

    def forward(self, spikes: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Postsynaptic currents ``(B, n_target)`` of presynaptic spikes ``(B, n_source)``.

        ``spikes``: bool or float; ``weight``: the ``(rows, cols)`` parameters (absent ones already
        0); computed in float32 if they are float32 (the learner's ``dtype``), else in float64.
        """
        spikes = np.asarray(spikes)
        dtype = _real(weight)
        weight = np.asarray(weight, dtype=dtype)
        pooled = self._pool(spikes, dtype)
        n = spikes.shape[0]
        if self.kind == "dense":
            return pooled.reshape(n, -1) @ weight
        c_out, out_h, out_w = self.target_shape
        currents = np.empty((n, c_out, out_h * out_w), dtype=dtype)
        kernel_t = np.ascontiguousarray(weight.T)
        for n0, n1 in self._chunks(n):
            block = kernel_t @ self._columns(pooled[n0:n1], dtype)  # (C_out, block * H_out * W_out)
            currents[n0:n1] = block.reshape(c_out, n1 - n0, out_h * out_w).transpose(1, 0, 2)
        return currents.reshape(n, -1)

    def backward(self, spikes: np.ndarray, grad_currents: np.ndarray, weight: np.ndarray,
                 need_input: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Gradients of :meth:`forward`.

        Parameters
        ----------
        spikes : ndarray, shape (B, n_source)
            Bool or float.
        grad_currents : ndarray, shape (B, n_target)
            ``dL/dI``.
        weight : ndarray, shape (rows, cols)
            Parameters through which the error reaches the source.
        need_input : bool
            Whether to compute ``dL/ds`` (not needed for the input layer).

        Returns
        -------
        grad_weight : ndarray, shape (rows, cols)
            ``dL/dW``: the gradients of all synapses that share a parameter, summed (times the
            pooling factor, which the synapses' weights carry).
        grad_spikes : ndarray, shape (B, n_source), or None
        """
        spikes = np.asarray(spikes)
        dtype = _real(weight)  # float32 weights (the learner's dtype): computed in float32
        grad_currents = np.asarray(grad_currents, dtype=dtype)
        weight = np.asarray(weight, dtype=dtype)
        pooled = self._pool(spikes, dtype)
        n = spikes.shape[0]
        if self.kind == "dense":
            flat = pooled.reshape(n, -1)
            grad_weight = flat.T @ grad_currents
            if not need_input:
                return grad_weight, None
            return grad_weight, self._unpool((grad_currents @ weight.T).reshape(pooled.shape))
        c_out, out_h, out_w = self.target_shape
        k = self.kernel_size
        c_in, hp, wp = self.pooled_shape
        grad_weight = np.zeros(self.parameter_shape, dtype=dtype)
        grad_pooled = np.zeros((n, c_in, hp, wp), dtype=dtype) if need_input else None
        for n0, n1 in self._chunks(n):
            # dL/dI of the block as (C_out, block * H_out * W_out): the columns' order.
            grad = np.ascontiguousarray(
                grad_currents[n0:n1].reshape(n1 - n0, c_out, out_h * out_w).transpose(1, 0, 2)
            ).reshape(c_out, -1)
            grad_weight += self._columns(pooled[n0:n1], dtype) @ grad.T
            if not need_input:
                continue
            grad_columns = (weight @ grad).reshape(c_in, k, k, n1 - n0, out_h, out_w)  # col2im below
            target = grad_pooled[n0:n1]
            for dy, dx, (out_y, out_x), (in_y, in_x) in self._offsets():
                target[:, :, in_y, in_x] += grad_columns[:, dy, dx, :, out_y, out_x].transpose(1, 0, 2, 3)
        if not need_input:
            return grad_weight, None
        return grad_weight, self._unpool(grad_pooled)


@functools.lru_cache(maxsize=16)
def _listed_synapses(geometry: Geometry) -> SharedSynapses:
    """:meth:`Geometry.synapses`, listed once per geometry (geometries are frozen and hashable)."""
    return geometry._list_synapses()


@functools.lru_cache(maxsize=16)
def _event_tables(geometry: Geometry):
    """``(source_pooled, indptr, rows, positions)`` of a geometry, built once (see :meth:`Geometry.pooled_table`)."""
    return geometry._list_event_tables()


def _real(weight: np.ndarray) -> np.dtype:
    """The type products with ``weight`` run in: float32 for float32 weights, else float64."""
    return np.dtype(np.float32 if np.asarray(weight).dtype == np.float32 else np.float64)

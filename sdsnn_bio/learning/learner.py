"""Surrogate-gradient learning of every plastic projection (NumPy/SciPy, optionally Numba).

The learner trains the weights of a :class:`~sdsnn_bio.structure.Structure` in place. It is fed
either by Brian2's recorded spikes (:meth:`Learner.reconstruct`: potentials are rebuilt from the
recorded spikes and current weights) or by the NumPy kernel, which produces the same spikes as the
Brian2 network (:meth:`Learner.simulate`; tested spike for spike).

Absent synapses: the forward pass uses the *effective* weights (pruned synapses count 0), and the
gradient with respect to every potential synapse is computed densely, so a pruned synapse's latent
weight keeps learning (SD-SNN section 3 reads it to decide regeneration). A pruned neuron is silent
and has lost its synapses; the backward pass still sends it the error it would receive through its
latent outgoing weights. So every latent weight receives exactly the surrogate gradient it would
have if the synapse existed with weight 0 and a pruned neuron were alive (without input it stays at
rest and never fires, so the forward pass is the same; tested against the forward-mode
derivative), and regeneration can revive a pruned neuron. This is *not* what the released SD-SNN
code does: there pruned weights take part in the forward pass with the value they drifted to since
the last end-of-epoch re-masking (``docs/development.md``, released semantics).

Inputs are sparse (a few thousand events per sample): a batch is a CSR matrix of shape
``(T*B, n_input)`` (row ``t*B + b``), so the input currents and the input weights' gradient are
sparse-dense products.

Direct (analog) input (``data.encoding = "direct"``, :mod:`sdsnn_bio.data.analog`): a sample is a
vector of intensities ``x`` presented at every step, so the first projection's current is the same
at every step, ``J_t = x W`` (``geometry.forward(x, W)`` for a convolution), computed once per
batch and broadcast over time, and its gradient is ``dL/dW = sum_t x^T dL/dJ_t = x^T (sum_t
dL/dJ_t)`` (``geometry.backward`` of the summed ``dL/dJ``). The layers above are unchanged; with the
``"numba"`` backend the first layer's loop is integrated from these currents and its BPTT stores
``dL/dJ`` instead of scattering it over input events (tested against finite differences and
against Brian2, spike for spike).

Two backends compute the same thing. ``"numpy"``: the reference, one NumPy/SciPy operation per
time step (:mod:`.kernel`, :mod:`.bptt`, :mod:`.optim`). ``"numba"``: each layer's time loop is one
compiled call (:mod:`.fused`) that accumulates the input currents inside the loop, computes the
weight gradients during BPTT and runs Adam in one pass, so no ``(T, B, N)`` current or gradient
temporary is built for the first layer. Both give the same spikes and potentials bit for bit; the
gradients agree to rounding (BLAS sums in another order) and Adam bit for bit (tested). ``"auto"``
picks Numba when it is installed.

Floating-point type (``LearningParameters.dtype``): ``"float64"`` (default) reproduces Brian2's
potentials bit for bit; ``"float32"`` runs everything above in float32 (weights, potentials,
gradients, Adam moments; the kernels' scalars and constants too, so nothing is promoted inside a
loop), about half the memory traffic of these memory-bound loops. Brian2 stays float64.

Shared parameters (convolution, or a dense layer fed by channels, average pooling folded in;
:mod:`sdsnn_bio.geometry`): the currents of such a projection are ``geometry.forward`` of the
presynaptic spikes and its gradient, ``geometry.backward``, is the sum over the synapses that
share each parameter (tested against finite differences and against the gradient of the unrolled
one-weight-per-synapse network). With the ``"numba"`` backend a shared projection into a LIF layer
runs in the compiled kernels of :mod:`.shared` instead: event-driven currents (each presynaptic
spike adds its kernel rows) integrated in the same call as the LIF loop, the weight gradient
accumulated from the presynaptic spikes only (for a convolution inside the BPTT pass), the
surrogate, the un-pooling of the error and BPTT fused into one pass, and the error sent to the
layer below a compiled transposed convolution over the non-zero errors (a BLAS product for a
dense layer fed by pooled channels). Fully-connected
projections of such a network run as in the ``"numpy"`` backend, and so do an analog first layer
and other neuron models. Both backends give the same spikes and the same gradients to rounding
(tested: ``tests/test_geometry.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from ..dynamics import LayerDynamics
from ..structure import Structure
from .bptt import backward_layer
from .fused import NO_BOOL3, NO_INDEX, SURROGATE_CODES, forward_outputs, kernels, numba_available
from .kernel import LayerTrace, integrate_layer
from .loss import LOSSES, cross_entropy, predict, rate_mse
from .optim import Adam
from .parallel import RowBlocks, default_threads
from .shared import (
    backward_shared,
    backward_weight_gradient_shared,
    integrate_shared,
    pooled_gradient_shared,
    weight_gradient_shared,
)
from .stepping import backward_model, integrate_model
from .surrogate import make_surrogate
from .workspace import Workspace

__all__ = ["LearningParameters", "InputBatch", "Learner", "ForwardPass", "StepResult", "BACKENDS",
           "OPTIMIZER_RESETS", "DTYPES"]

#: Implementations of the learner (see the module docstring).
BACKENDS = ("auto", "numba", "numpy")

#: What a removed or regrown synapse's optimiser state does (:class:`LearningParameters`).
OPTIMIZER_RESETS = ("restart", "keep")

#: Floating-point types the learner computes in (:class:`LearningParameters`).
DTYPES = ("float64", "float32")

#: The fused kernels' work is cut in this many blocks per thread, which threads take as they become
#: free (load balancing on shared cores). Forward blocks are groups of samples; backward blocks are
#: groups of neurons, whose width sets the length of the scattered input-gradient rows (narrower
#: rows cost more per input event), hence fewer of them.
_FORWARD_BLOCKS_PER_THREAD = 4
_BACKWARD_BLOCKS_PER_THREAD = 2


@dataclass(frozen=True)
class LearningParameters:
    """Surrogate-gradient learning.

    Parameters
    ----------
    surrogate : str
        Surrogate derivative (see :mod:`sdsnn_bio.learning.surrogate`).
    surrogate_scale : float or None
        Its shape parameter (None: the surrogate's default).
    loss : str
        ``"rate_cross_entropy"`` or ``"membrane_cross_entropy"`` (see :mod:`.loss`).
    logit_scale : float
        Logits are ``logit_scale * rate`` (or ``* mean potential``).
    learning_rate, beta1, beta2, epsilon : float
        Adam.
    masked_forward : bool
        True (default): the forward pass uses the effective weights (absent synapses count 0) and
        pruned neurons are silent. False (the released SD-SNN scripts, whose forward pass never
        applies the mask): every synapse takes part with its current weight and every neuron may
        fire, so pruned weights train densely between development steps; the released-semantics
        rules re-zero the absent synapses' weights at every pruning step.
    optimizer_reset : {"restart", "keep"}
        What happens to the Adam state of a synapse that development removes or regrows:
        ``"restart"`` (default) gives it fresh moments and its own bias-correction count, so its
        next update is that of a fresh synapse; ``"keep"`` leaves the optimiser untouched (the
        released SD-SNN code). See :mod:`.optim` for why restart is the default.
    dtype : {"float64", "float32"}
        Floating-point type of everything the learner computes and keeps: the weights it trains
        (the structure's weight arrays are converted once, when the :class:`Learner` is built),
        potentials, traces, gradients and the Adam moments. ``"float64"`` (default) gives the
        potentials of the Brian2 network bit for bit; ``"float32"`` halves the memory traffic of
        the memory-bound kernels (``docs/benchmarks.md``) and rounds the potentials, so spikes
        may differ from Brian2's where a potential lies within rounding of the threshold. Brian2
        always simulates in float64 (weights handed to it are converted). float64 stays the
        default until float32 has been shown to train as well (the check in
        ``docs/benchmarks.md``).
    """

    surrogate: str = "fast_sigmoid"
    surrogate_scale: float | None = None
    loss: str = "rate_cross_entropy"
    logit_scale: float = 10.0
    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    masked_forward: bool = True
    optimizer_reset: str = "restart"
    dtype: str = "float64"

    def __post_init__(self) -> None:
        make_surrogate(self.surrogate, self.surrogate_scale)  # validates the name and scale
        if self.dtype not in DTYPES:
            raise ValueError(f"learning.dtype: expected one of {list(DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.masked_forward, bool):
            raise ValueError(f"learning.masked_forward: expected true or false, got {self.masked_forward!r}")
        if self.optimizer_reset not in OPTIMIZER_RESETS:
            raise ValueError(
                f"learning.optimizer_reset: expected one of {list(OPTIMIZER_RESETS)}, "
                f"got {self.optimizer_reset!r}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"learning.loss: expected one of {list(LOSSES)}, got {self.loss!r}")
        for name, low, high in (
            ("logit_scale", 0.0, np.inf), ("learning_rate", 0.0, np.inf),
            ("beta1", 0.0, 1.0), ("beta2", 0.0, 1.0), ("epsilon", 0.0, np.inf),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                low < value < high if name.startswith("beta") else low < value < high
            ):
                raise ValueError(
                    f"learning.{name}: expected a number in ({low}, {high}), got {value!r}"
                )


def _fast_lif(dynamics) -> bool:
    """Whether a layer runs the fast LIF loops (:mod:`.kernel`, :mod:`.bptt`, the fused kernels).

    Exactly a :class:`~sdsnn_bio.dynamics.LayerDynamics`: the neuron models' own records are built on
    it (``LIFDynamics``, and ALIF's on that), and a record that adds fields or steps must never reach
    loops that implement plain LIF.
    """
    return type(dynamics) is LayerDynamics


def _zeros_aligned(shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """Zeros aligned on a 64-byte cache line.

    Zeros whose first element starts a 64-byte cache line: threads that own column blocks of
    multiples of a cache line's elements then never share a cache line (no false sharing).
    """
    dtype = np.dtype(dtype)
    per_line = 64 // dtype.itemsize
    size = int(np.prod(shape))
    buffer = np.zeros(size + per_line, dtype=dtype)
    start = (-buffer.ctypes.data % 64) // dtype.itemsize
    return buffer[start:start + size].reshape(shape)


@dataclass(frozen=True)
class InputBatch:
    """Input of B samples as a sparse (T*B, n_input) matrix, time-major rows.

    Spikes: every stored value is 1 (one spike); :meth:`from_samples` builds it from per-sample
    events. Direct (analog) input: ``intensities`` holds each sample's constant input ``x``,
    shape (B, n_input), and ``matrix`` repeats it at every step (row ``t*B + b`` is ``x_b``), so
    that ``matrix`` is the input of every step either way (:meth:`from_intensities`).
    """

    matrix: sp.csr_matrix
    n_samples: int
    n_steps: int
    intensities: np.ndarray | None = None

    @property
    def analog(self) -> bool:
        """True for a direct-encoded (analog) batch."""
        return self.intensities is not None

    def __post_init__(self) -> None:
        if not sp.issparse(self.matrix) or self.matrix.format != "csr":
            raise ValueError(f"InputBatch.matrix: expected a CSR matrix, got {type(self.matrix).__name__}")
        if self.matrix.shape[0] != self.n_steps * self.n_samples:
            raise ValueError(
                f"InputBatch.matrix: expected n_steps*n_samples = {self.n_steps * self.n_samples} rows, "
                f"got {self.matrix.shape[0]}"
            )
        if self.intensities is not None:
            values = self.intensities
            if not isinstance(values, np.ndarray) or values.shape != (self.n_samples, self.matrix.shape[1]):
                raise ValueError(
                    f"InputBatch.intensities: expected an array of shape {(self.n_samples, self.matrix.shape[1])}, "
                    f"got {getattr(values, 'shape', type(values).__name__)}"
                )
            if values.size and not np.all(np.isfinite(values)):
                raise ValueError("InputBatch.intensities: expected finite values, got NaN or infinity")
        elif self.matrix.nnz and not np.all(self.matrix.data == 1):
            raise ValueError("InputBatch.matrix: expected spikes (every stored value 1); analog input "
                             "goes through InputBatch.from_intensities")

    @property
    def transposed(self) -> sp.csr_matrix:
        """``matrix.T`` in CSR form (n_input, T*B), for the input weights' gradient."""
        cached = self.__dict__.get("_transposed")
        if cached is None:
            cached = self.matrix.T.tocsr()
            object.__setattr__(self, "_transposed", cached)
        return cached

    def samples(self) -> list:
        """The batch as per-sample ``(channels, steps)`` int64 arrays (the inverse of :meth:`from_samples`).

        Exactly the spikes of :attr:`matrix`, ordered by step then channel: what a Brian2
        ``SpikeGeneratorGroup`` is given when the batch is simulated by the network of record. An
        analog batch gives its intensity vectors, (n_input,) float64 each: what the network's
        direct input group is given.
        """
        if self.analog:
            return [row.copy() for row in self.intensities]
        coo = self.matrix.tocoo()
        rows = np.asarray(coo.row, dtype=np.int64)
        channels = np.asarray(coo.col, dtype=np.int64)
        steps, sample = rows // self.n_samples, rows % self.n_samples
        order = np.lexsort((channels, steps, sample))
        sample, steps, channels = sample[order], steps[order], channels[order]
        bounds = np.searchsorted(sample, np.arange(self.n_samples + 1))
        return [(channels[bounds[b]:bounds[b + 1]], steps[bounds[b]:bounds[b + 1]])
                for b in range(self.n_samples)]

    def as_dtype(self, dtype) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """``(matrix, transposed)`` with values of ``dtype``.

        Spikes are 1 in any floating-point type; a product with weights of another type would be
        computed in the wider one, so the learner asks for its own (cached per type).
        """
        dtype = np.dtype(dtype)
        if dtype == self.matrix.dtype:
            return self.matrix, self.transposed
        key = f"_as_{dtype.name}"
        cached = self.__dict__.get(key)
        if cached is None:
            cached = (self.matrix.astype(dtype), self.transposed.astype(dtype))
            object.__setattr__(self, key, cached)
        return cached

    @classmethod
    def from_intensities(cls, intensities, n_steps: int) -> "InputBatch":
        """An analog batch: ``intensities`` (B, n_input), each row presented at every one of ``n_steps``."""
        values = np.array(intensities, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"intensities: expected shape (B, n_input), got {values.shape}")
        once = sp.csr_matrix(values)
        matrix = sp.vstack([once] * int(n_steps), format="csr") if values.shape[0] else sp.csr_matrix(
            (0, values.shape[1]))
        return cls(matrix, values.shape[0], int(n_steps), values)

    @classmethod
    def from_samples(cls, samples, n_steps: int, n_input: int) -> "InputBatch":
        """Build from per-sample ``(channels, steps)`` arrays (see ``data.encoding``).

        Samples that are 1-D float arrays of ``n_input`` intensities (direct encoding,
        :mod:`sdsnn_bio.data.analog`) give an analog batch (:meth:`from_intensities`); a batch
        cannot mix the two.
        """
        samples = list(samples)
        analog = [isinstance(s, np.ndarray) and s.ndim == 1 and np.issubdtype(s.dtype, np.floating)
                  for s in samples]
        if any(analog):
            if not all(analog):
                raise ValueError("InputBatch.from_samples: a batch mixes analog samples (intensity vectors) "
                                 "and spike samples ((channels, steps) pairs)")
            shapes = {s.shape for s in samples}
            if shapes != {(n_input,)}:
                raise ValueError(f"InputBatch.from_samples: expected intensity vectors of shape ({n_input},), "
                                 f"got {sorted(shapes)}")
            return cls.from_intensities(np.stack(samples) if samples else np.zeros((0, n_input)), n_steps)
        n_samples = len(samples)
        rows, cols = [], []
        for b, (channels, steps) in enumerate(samples):
            channels = np.asarray(channels, dtype=np.int64)
            steps = np.asarray(steps, dtype=np.int64)
            rows.append(steps * n_samples + b)
            cols.append(channels)
        rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        data = np.ones(rows.size)
        matrix = sp.csr_matrix((data, (rows, cols)), shape=(n_steps * n_samples, n_input))
        matrix.sum_duplicates()
        matrix.data[:] = 1.0  # at most one spike per channel and step
        return cls(matrix, n_samples, n_steps)


@dataclass(frozen=True)
class ForwardPass:
    """Layer traces of a batch, by population name (hidden layers and output)."""

    traces: dict[str, LayerTrace]
    order: tuple[str, ...]

    def output(self) -> LayerTrace:
        """Trace of the output layer."""
        return self.traces[self.order[-1]]


@dataclass(frozen=True)
class StepResult:
    """What one training batch gave: loss, predictions, labels and spike counts per population."""

    loss: float
    predictions: np.ndarray
    labels: np.ndarray
    spike_counts: dict[str, int]

    @property
    def n_correct(self) -> int:
        """Samples of the batch predicted right."""
        return int(np.count_nonzero(self.predictions == self.labels))


class Learner:
    """Trains the projections of ``structure`` in place with surrogate-gradient BPTT and Adam.

    Parameters
    ----------
    structure : Structure
        The network's structure; its weight arrays are updated in place.
    dynamics : dict[str, LayerDynamics or ModelDynamics]
        Per neuron population (hidden layers and output), as
        :meth:`~sdsnn_bio.model.NetworkParameters.layer_dynamics` gives them: ``LayerDynamics`` for
        the default model (LIF, voltage jumps), :class:`~sdsnn_bio.dynamics.ModelDynamics` for any
        other.
    params : LearningParameters
        With ``params.dtype``, the type the structure's weight arrays are converted to here
        (float32: rounded to the nearest); from then on they are trained in place in that type.
    n_threads : int, optional
        Threads for the sparse products, the time loops and the optimiser (default: the cores
        available).
    backend : {"auto", "numba", "numpy"}
        Implementation (see the module docstring); ``"auto"``: Numba when installed.
    """

    def __init__(
        self, structure: Structure, dynamics: dict, params: LearningParameters,
        n_threads: int | None = None,
        backend: str = "auto",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"learning.backend: expected one of {list(BACKENDS)}, got {backend!r}")
        if backend == "numba" and not numba_available():
            raise ValueError("learning.backend: 'numba' requested but Numba is not installed")
        self._shared = any(p.geometry is not None for p in structure.projections)
        # The fused kernels implement the default model (LIF neurons, voltage-jump synapses); any
        # other model runs its own step (:mod:`.stepping`): NumPy, or its compiled loops with "numba".
        for name, layer in dict(dynamics).items():
            if isinstance(layer, LayerDynamics) and not _fast_lif(layer):
                raise ValueError(
                    f"dynamics[{name!r}]: got a neuron model's own record ({type(layer).__name__}); pair it "
                    "with its synapse record in a ModelDynamics (NetworkParameters.layer_dynamics does), or "
                    "give a plain LayerDynamics for LIF neurons with voltage-jump synapses"
                )
        self._fusable = all(_fast_lif(d) for d in dynamics.values())
        compilable = all(_fast_lif(d) or getattr(d, "compilable", False) for d in dynamics.values())
        if backend == "numba" and not compilable:
            raise ValueError(
                "learning.backend: 'numba' needs compiled loops of every layer's neuron model, and "
                "this network's model has none; use 'numpy' or 'auto'"
            )
        self.backend = "numba" if backend == "auto" and numba_available() and compilable else (
            "numpy" if backend == "auto" else backend
        )
        self.dtype = np.dtype(params.dtype)
        for projection in structure.projections:  # once: then trained in place, in this type
            if projection.weight.dtype != self.dtype:
                projection.weight = projection.weight.astype(self.dtype)
        self.structure = structure
        self.workers = RowBlocks(default_threads() if n_threads is None else n_threads)
        #: Work arrays of :meth:`train_step` (Numba backend), reused from step to step.
        self.workspace = Workspace()
        self.dynamics = dict(dynamics)
        self.params = params
        self.surrogate = make_surrogate(params.surrogate, params.surrogate_scale)
        self.optimizer = Adam(params.learning_rate, params.beta1, params.beta2, params.epsilon,
                              fused=self.backend == "numba")
        self.order = tuple(p.name for p in structure.populations[1:])
        #: Mean spike counts per neuron of the latest training batch, shape (1, N) per population.
        self.last_spike_counts: dict[str, np.ndarray] = {}
        missing = set(self.order) - set(self.dynamics)
        if missing:
            raise ValueError(f"dynamics: missing layers {sorted(missing)}")

    # ------------------------------------------------------------------ forward
    def _effective_weight(self, projection) -> np.ndarray:
        """The weights the forward pass uses.

        ``projection.effective_weight()``, without the copy when every synapse exists (or with
        ``masked_forward = False``, where every synapse takes part with its weight).
        """
        if not self.params.masked_forward or projection.exists.all():
            return projection.weight
        return projection.effective_weight()

    def _alive(self, name: str) -> np.ndarray:
        """Neurons that may fire.

        Neurons that may fire: the population's ``alive`` per neuron (all with
        ``masked_forward = False``).
        """
        alive = self.structure.population(name).neuron_alive
        return alive if self.params.masked_forward else np.ones(alive.shape, dtype=bool)

    def _currents(self, presynaptic, weight: np.ndarray, n_steps: int, n_samples: int) -> np.ndarray:
        if not sp.issparse(presynaptic):
            # Spikes as a CSR matrix: each current is summed in increasing presynaptic index,
            # as in the input layer (and in the fused kernel).
            presynaptic = sp.csr_matrix(presynaptic.reshape(n_steps * n_samples, -1), dtype=self.dtype)
        flat = self.workers.sparse_matmul(presynaptic, weight)
        return np.asarray(flat).reshape(n_steps, n_samples, weight.shape[1])

    def _integrate_fused(self, batch: InputBatch, presynaptic, weight, name: str, given,
                         workspace: Workspace | None = None) -> LayerTrace:
        """One layer's forward pass in the compiled kernel, sample blocks on threads.

        With a ``workspace`` the potentials, spikes and refractory flags are its arrays (valid
        until its next use), else fresh ones.
        """
        def empty(kind, shape, dtype):
            if workspace is None:
                return np.empty(shape, dtype=dtype)
            return workspace.empty((kind, name), shape, dtype)

        dynamics = self.dynamics[name]
        n_steps, n_samples = batch.n_steps, batch.n_samples
        shape = (n_steps, n_samples, weight.shape[1])
        real = self.dtype.type  # scalars of the learner's type: no promotion inside the kernel
        weight = np.ascontiguousarray(weight, dtype=self.dtype)
        alive = np.ascontiguousarray(self._alive(name), dtype=bool)
        refractory = dynamics.refractory_steps > 0
        potential, spikes, not_refractory = forward_outputs(empty, shape, self.dtype, given, refractory)
        counts = np.zeros(shape[1:], dtype=np.int64)
        dense = presynaptic is not None
        pre_spikes = np.ascontiguousarray(presynaptic, dtype=bool) if dense else NO_BOOL3
        if dense and pre_spikes.shape != (n_steps, n_samples, weight.shape[0]):
            raise ValueError(
                f"{name}: presynaptic spikes of shape {pre_spikes.shape} do not match the "
                f"weights {weight.shape}"
            )
        matrix = batch.matrix
        if not dense and matrix.shape[1] != weight.shape[0]:
            raise ValueError(f"{name}: input batch has {matrix.shape[1]} channels, the weights {weight.shape[0]}")
        forward_block = kernels().forward_block

        def block(b0: int, b1: int) -> None:
            forward_block(
                matrix.indptr, matrix.indices, pre_spikes, dense, weight, n_samples, b0, b1,
                real(dynamics.decay), real(dynamics.threshold), real(dynamics.reset),
                int(dynamics.refractory_steps), alive, spikes, given is not None,
                potential, spikes, not_refractory, counts,
            )

        self.workers.map(block, n_samples, _FORWARD_BLOCKS_PER_THREAD)
        return LayerTrace(potential, spikes, not_refractory if refractory else None, counts)

    def _compiled_shared(self, projection) -> bool:
        """Whether ``projection`` (and its LIF target layer) runs in the compiled shared kernels."""
        return (self.backend == "numba" and projection.geometry is not None
                and _fast_lif(self.dynamics[projection.target]))

    @staticmethod
    def _allocator(workspace: Workspace | None, name: str):
        """``allocate(kind, shape, dtype)`` for :mod:`.shared`.

        The workspace's arrays named ``(kind, name)``, or fresh ones without a workspace.
        """
        if workspace is None:
            return lambda kind, shape, dtype: np.empty(shape, dtype=dtype)
        return lambda kind, shape, dtype: workspace.empty((kind, name), shape, dtype)

    def _integrate_shared(self, batch: InputBatch, presynaptic, weight, projection, given,
                          workspace: Workspace | None = None) -> LayerTrace:
        """A layer fed by a shared projection: event-driven currents and LIF loop (:mod:`.shared`)."""
        name = projection.target
        return integrate_shared(batch.matrix, presynaptic, projection.geometry, weight, self.dynamics[name],
                                self._alive(name), given, batch.n_steps, self.workers,
                                self._allocator(workspace, name))

    def _dense_spikes(self, batch: InputBatch, presynaptic) -> np.ndarray:
        """Presynaptic spikes as a (T*B, n_source) array.

        The learner's float type for the input; a hidden layer's own spikes otherwise (a view, no
        copy: the geometries read bool spikes).
        """
        if presynaptic is None:
            return batch.as_dtype(self.dtype)[0].toarray()
        return presynaptic.reshape(batch.n_steps * batch.n_samples, -1)

    def _integrate(self, currents: np.ndarray, name: str, given) -> LayerTrace:
        """One layer's forward pass from its input currents.

        The fast LIF loop (:mod:`.kernel`) for the default model, the model's own step
        (:mod:`.stepping`; its compiled loop with the ``"numba"`` backend) for any other.
        """
        dynamics = self.dynamics[name]
        if _fast_lif(dynamics):
            return integrate_layer(currents, dynamics, self._alive(name), given)
        return integrate_model(dynamics, currents, self._alive(name), given, compiled=self.backend == "numba")

    def _analog_currents(self, batch: InputBatch, projection, weight: np.ndarray) -> np.ndarray:
        """First-layer currents of an analog batch: ``x W`` once, the same at every step (T, B, N)."""
        values = batch.intensities.astype(self.dtype, copy=False)  # products in the learner's type
        if projection.geometry is not None:
            once = projection.geometry.forward(values, weight)
        else:
            once = values @ weight
        return np.broadcast_to(once, (batch.n_steps,) + once.shape)

    def _analog_gradient(self, batch: InputBatch, projection, grad_currents: np.ndarray) -> np.ndarray:
        """``dL/dW = x^T sum_t dL/dJ_t`` of the first projection of an analog batch."""
        summed = grad_currents.sum(axis=0)  # (B, N)
        values = batch.intensities.astype(self.dtype, copy=False)
        if projection.geometry is not None:
            grad, _ = projection.geometry.backward(values, summed, self._backprop_weight(projection),
                                                   need_input=False)
            return grad
        return values.T @ summed

    def _run(self, batch: InputBatch, recorded: dict | None, workspace: Workspace | None = None) -> ForwardPass:
        traces = {}
        presynaptic = None  # the input layer: batch.matrix
        for name in self.order:
            projection = self.structure.projection_into(name)
            weight = self._effective_weight(projection)
            given = None if recorded is None else recorded[name]
            if presynaptic is None and batch.analog:
                currents = self._analog_currents(batch, projection, weight)
                if not _fast_lif(self.dynamics[name]):
                    currents = np.ascontiguousarray(currents)  # the models' own loops write per step
                trace = self._integrate(currents, name, given)
            elif self._compiled_shared(projection):
                trace = self._integrate_shared(batch, presynaptic, weight, projection, given, workspace)
            elif projection.geometry is not None:
                currents = projection.geometry.forward(self._dense_spikes(batch, presynaptic), weight)
                trace = self._integrate(currents.reshape(batch.n_steps, batch.n_samples, -1), name, given)
            elif self.backend == "numba" and _fast_lif(self.dynamics[name]):
                trace = self._integrate_fused(batch, presynaptic, weight, name, given, workspace)
            else:
                currents = self._currents(
                    batch.as_dtype(self.dtype)[0] if presynaptic is None else presynaptic, weight,
                    batch.n_steps, batch.n_samples,
                )
                trace = self._integrate(currents, name, given)
            traces[name] = trace
            presynaptic = trace.spikes
        return ForwardPass(traces, self.order)

    def simulate(self, batch: InputBatch) -> ForwardPass:
        """Forward pass with the NumPy kernel (spikes from the threshold)."""
        return self._run(batch, None)

    def reconstruct(self, batch: InputBatch, recorded_spikes: dict) -> ForwardPass:
        """Forward pass rebuilt from recorded spikes (dense (T, B, N) bool per layer)."""
        return self._run(batch, recorded_spikes)

    # ------------------------------------------------------------------ read-out and loss
    @staticmethod
    def readout(forward: ForwardPass) -> tuple[np.ndarray, np.ndarray]:
        """Output spike counts (B, C) and mean potentials (B, C)."""
        out = forward.output()
        return out.counts(), out.potential.mean(axis=0)

    def loss(self, forward: ForwardPass, labels: np.ndarray) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        """Loss and its gradient w.r.t. output spikes and potentials (each (T, B, C) or None)."""
        out = forward.output()
        n_steps = out.spikes.shape[0]
        counts, mean_potential = self.readout(forward)
        scale = self.params.logit_scale
        if self.params.loss == "rate_cross_entropy":
            value, grad_logits = cross_entropy(scale * counts / n_steps, labels)
            grad = np.broadcast_to(grad_logits * (scale / n_steps), out.spikes.shape)
            return value, np.ascontiguousarray(grad, dtype=self.dtype), None
        if self.params.loss == "rate_mse":
            value, grad_rates = rate_mse(counts / n_steps, labels)
            grad = np.broadcast_to(grad_rates / n_steps, out.spikes.shape)
            return value, np.ascontiguousarray(grad, dtype=self.dtype), None
        value, grad_logits = cross_entropy(scale * mean_potential, labels)
        grad = np.broadcast_to(grad_logits * (scale / n_steps), out.potential.shape)
        return value, None, np.ascontiguousarray(grad, dtype=self.dtype)

    # ------------------------------------------------------------------ backward
    def _backprop_weight(self, projection) -> np.ndarray:
        """Weights through which errors reach the source layer (latent for pruned sources)."""
        source_dead = ~self.structure.population(projection.source).alive
        if not self.params.masked_forward or not source_dead.any():
            return self._effective_weight(projection)
        weight = projection.effective_weight()
        rows = source_dead[self.structure.row_units(projection)]  # parameter rows of dead units
        weight[rows] = projection.weight[rows]
        return weight

    def _shared_backward(self, trace, dynamics, projection, grad_spikes, grad_potential, pooled_error,
                         workspace: Workspace | None = None):
        """Position-major ``dL/dI`` of a layer fed by a compiled shared projection (:mod:`.shared`)."""
        return backward_shared(trace, dynamics, self.surrogate, projection.geometry, grad_spikes,
                               grad_potential, pooled_error, self.workers,
                               self._allocator(workspace, projection.target))

    def _shared_backward_gradient(self, batch: InputBatch, source, trace, dynamics, projection, grad_spikes,
                                  grad_potential, pooled_error, error_below: bool,
                                  workspace: Workspace | None = None):
        """``(None, dL/dW, error of the layer below or None)`` of a compiled convolution, one pass (:mod:`.shared`)."""
        return backward_weight_gradient_shared(
            trace, dynamics, self.surrogate, projection.geometry, grad_spikes, grad_potential, pooled_error,
            batch.matrix, source, self.workers, self._allocator(workspace, projection.name),
            keep_grad_currents=False, weight_below=self._backprop_weight(projection) if error_below else None)

    def _shared_weight_gradient(self, batch: InputBatch, source, projection, grad_currents) -> np.ndarray:
        """``dL/dW`` of a compiled shared projection from its presynaptic spikes (:mod:`.shared`)."""
        return weight_gradient_shared(batch.matrix, source, projection.geometry, grad_currents, self.workers)

    def _shared_pooled_gradient(self, projection, grad_currents, workspace: Workspace | None = None):
        """Error of the pooled input of a compiled shared projection (a :class:`.shared.PooledError`)."""
        return pooled_gradient_shared(projection.geometry, grad_currents, self._backprop_weight(projection),
                                      self.workers, self._allocator(workspace, projection.name))

    def gradients(self, batch: InputBatch, forward: ForwardPass, labels: np.ndarray):
        """Loss and dL/dW for every potential synapse of every projection."""
        return self._gradients(batch, forward, labels, None)

    def _gradients(self, batch: InputBatch, forward: ForwardPass, labels: np.ndarray,
                   workspace: Workspace | None):
        """:meth:`gradients`; the fused path takes its arrays from ``workspace`` if given."""
        if self.backend == "numba" and self._fusable and not self._shared:
            return self._gradients_fused(batch, forward, labels, workspace)
        value, grad_spikes, grad_potential = self.loss(forward, labels)
        grads = {}
        n_steps, n_samples = batch.n_steps, batch.n_samples
        pooled_error = None  # PooledError of a compiled shared projection above (sdsnn_bio.learning.shared)
        for index in range(len(self.order) - 1, -1, -1):
            name = self.order[index]
            trace = forward.traces[name]
            dynamics = self.dynamics[name]
            projection = self.structure.projection_into(name)
            compiled = self._compiled_shared(projection) and not (index == 0 and batch.analog)
            if pooled_error is not None and not compiled:  # this layer takes dL/ds un-pooled
                grad_spikes, pooled_error = pooled_error.unpooled(), None
            if compiled:
                source = None if index == 0 else forward.traces[self.order[index - 1]].spikes
                if projection.geometry.kind == "convolution":
                    # Kernel-sized partial sums: the weight gradient and the error of the layer below
                    # in the BPTT pass, dL/dI never stored.
                    _, grads[projection.name], pooled_error = self._shared_backward_gradient(
                        batch, source, trace, dynamics, projection, grad_spikes, grad_potential, pooled_error,
                        index > 0, workspace)
                else:
                    grad_currents = self._shared_backward(trace, dynamics, projection, grad_spikes,
                                                          grad_potential, pooled_error, workspace)
                    grads[projection.name] = self._shared_weight_gradient(batch, source, projection, grad_currents)
                    pooled_error = None if index == 0 else self._shared_pooled_gradient(projection, grad_currents,
                                                                                        workspace)
                if index == 0:
                    break
                grad_spikes = grad_potential = None
                continue
            if _fast_lif(dynamics):
                grad_currents = backward_layer(trace, dynamics, self.surrogate, grad_spikes, grad_potential)
            else:
                grad_currents = backward_model(dynamics, trace, self.surrogate, grad_spikes, grad_potential,
                                               compiled=self.backend == "numba")
            if index == 0 and batch.analog:
                grads[projection.name] = self._analog_gradient(batch, projection, grad_currents)
                break
            flat_grad = grad_currents.reshape(n_steps * n_samples, -1)
            if projection.geometry is not None:
                source = None if index == 0 else forward.traces[self.order[index - 1]].spikes
                grads[projection.name], grad_source = projection.geometry.backward(
                    self._dense_spikes(batch, source), flat_grad, self._backprop_weight(projection),
                    need_input=index > 0,
                )
                if index == 0:
                    break
                grad_spikes = grad_source.reshape(n_steps, n_samples, -1)
                grad_potential = None
                continue
            if index == 0:
                grads[projection.name] = self.workers.sparse_matmul(batch.as_dtype(self.dtype)[1], flat_grad)
                break
            source_spikes = forward.traces[self.order[index - 1]].spikes
            flat_source = source_spikes.reshape(n_steps * n_samples, -1).astype(self.dtype)
            grads[projection.name] = flat_source.T @ flat_grad
            grad_spikes = (flat_grad @ self._backprop_weight(projection).T).reshape(
                n_steps, n_samples, -1
            )
            grad_potential = None
        return value, grads

    def _gradients_fused(self, batch: InputBatch, forward: ForwardPass, labels: np.ndarray,
                         workspace: Workspace | None = None):
        """Gradients with the compiled kernel.

        :meth:`gradients` with the compiled kernel: layer by layer from the output, each layer's
        neurons split in blocks over threads; a layer's kernel also computes the gradient of the
        projection above it (from that layer's ``dL/dI``) and, for the first layer, of the input
        projection. With a ``workspace``, the gradients and ``dL/dI`` arrays are its arrays (valid
        until its next use).
        """
        def zeros(kind, name, shape):
            if workspace is None:
                return _zeros_aligned(shape, self.dtype)
            return workspace.zeros((kind, name), shape, self.dtype)

        def empty(kind, name, shape):
            if workspace is None:
                return np.empty(shape, dtype=self.dtype)
            return workspace.empty((kind, name), shape, self.dtype)

        value, grad_spikes, grad_potential = self.loss(forward, labels)
        backward_block = kernels().backward_block
        surrogate_code = SURROGATE_CODES[self.surrogate.name]
        real = self.dtype.type  # scalars of the learner's type: no promotion inside the kernel
        surrogate_scale = real(self.surrogate.scale)
        no_float3, no_float2 = np.zeros((0, 0, 0), self.dtype), np.zeros((0, 0), self.dtype)
        matrix = batch.matrix
        grads = {}
        grad_above, weight_above, grad_weight_above = no_float3, no_float2, no_float2
        for index in range(len(self.order) - 1, -1, -1):
            name = self.order[index]
            trace, dynamics = forward.traces[name], self.dynamics[name]
            projection = self.structure.projection_into(name)
            shape = trace.potential.shape
            potential = np.ascontiguousarray(trace.potential, dtype=self.dtype)
            spikes = np.ascontiguousarray(trace.spikes, dtype=bool)
            has_refractory = trace.not_refractory is not None
            not_refractory = (np.ascontiguousarray(trace.not_refractory, dtype=bool)
                              if has_refractory else NO_BOOL3)
            has_grad_spikes = grad_spikes is not None
            has_grad_potential = grad_potential is not None
            grad_spikes = (np.ascontiguousarray(grad_spikes, dtype=self.dtype)
                           if has_grad_spikes else no_float3)
            grad_potential = (np.ascontiguousarray(grad_potential, dtype=self.dtype)
                              if has_grad_potential else no_float3)
            has_above = index < len(self.order) - 1
            first = index == 0
            # Spike input: the kernel scatters dL/dJ over the input events into dW_input. Analog
            # input: it stores dL/dJ, and dW_input = x^T sum_t dL/dJ_t follows (_analog_gradient).
            scatter = first and not batch.analog
            if scatter:
                grad_weight_input = zeros("grad_weight", projection.name, projection.shape)
                grads[projection.name] = grad_weight_input
                indptr, indices = matrix.indptr, matrix.indices
            else:
                grad_weight_input, indptr, indices = no_float2, NO_INDEX, NO_INDEX
            grad_currents = no_float3 if scatter else empty("grad_currents", name, shape)

            def block(n0: int, n1: int) -> None:
                backward_block(
                    potential, spikes, not_refractory, has_refractory, real(dynamics.decay),
                    real(dynamics.threshold), surrogate_code, surrogate_scale,
                    grad_spikes, has_grad_spikes, grad_potential, has_grad_potential,
                    grad_above, weight_above, grad_weight_above, has_above,
                    indptr, indices, grad_weight_input, scatter,
                    grad_currents, not scatter, n0, n1,
                )

            self.workers.map(block, shape[2], _BACKWARD_BLOCKS_PER_THREAD)
            if first:
                if batch.analog:
                    grads[projection.name] = self._analog_gradient(batch, projection, grad_currents)
                break
            # The layer below computes dL/dW of this projection and dL/ds from these dL/dI.
            grad_above = grad_currents
            weight_above = np.ascontiguousarray(self._backprop_weight(projection).T, dtype=self.dtype)
            grad_weight_above = zeros("grad_weight", projection.name, projection.shape)
            grads[projection.name] = grad_weight_above
            grad_spikes = grad_potential = None
        return value, grads

    # ------------------------------------------------------------------ training
    def train_step(self, batch: InputBatch, labels, recorded_spikes: dict | None = None) -> StepResult:
        """Forward (kernel, or reconstruction from recorded spikes), backward, Adam update."""
        labels = np.asarray(labels, dtype=np.int64)
        # The step's large arrays (potentials, spikes, dL/dI, weight gradients) are the workspace's,
        # reused from step to step: no fresh pages to fault in and zero at every step, and the same
        # page-aligned placement in every process (sdsnn_bio.learning.workspace).
        forward = self._run(batch, recorded_spikes, self.workspace)
        value, grads = self._gradients(batch, forward, labels, self.workspace)
        if not np.isfinite(value):
            raise FloatingPointError(f"training loss is {value}: the run diverged")
        weights = {p.name: p.weight for p in self.structure.projections}
        self.optimizer.update(weights, grads, self.workers)
        counts, mean_potential = self.readout(forward)
        layer_counts = {name: forward.traces[name].counts() for name in self.order}
        if batch.analog:  # deliveries: every channel with a non-zero input, at every step
            input_counts = np.count_nonzero(batch.intensities, axis=0)[None, :] * (batch.n_steps / batch.n_samples)
        else:
            input_counts = np.asarray(batch.matrix.sum(axis=0)).ravel()[None, :] / batch.n_samples
        self.last_spike_counts = {
            "input": input_counts,
            **{name: layer_counts[name].mean(axis=0, keepdims=True) for name in self.order},
        }
        return StepResult(
            value, predict(counts, mean_potential), labels,
            {name: int(layer_counts[name].sum()) for name in self.order},
        )

    def evaluate(self, batch: InputBatch) -> np.ndarray:
        """Predictions of the kernel for a batch (no learning)."""
        counts, mean_potential = self.readout(self.simulate(batch))
        return predict(counts, mean_potential)

    def evaluator(self, dtype: str = "float64") -> "Learner":
        """A learner that simulates the same weights in ``dtype``, for evaluation only.

        Every float32 value is exactly a float64 value, so ``evaluator("float64")`` of a float32
        learner simulates exactly the weights Brian2 receives, in Brian2's type: its spikes and
        predictions are Brian2's, where the float32 kernel's potentials differ from them by rounding.
        The structure is not copied: the evaluator's projections share every array but the
        weights (converted once here), so it must not train, and it sees structural changes made
        after it was built only through the shared masks.

        Parameters
        ----------
        dtype : {"float64", "float32"}
            The evaluator's type; this learner itself when it already is that type.
        """
        if np.dtype(dtype) == self.dtype:
            return self
        structure = Structure(self.structure.populations,
                              tuple(replace(p, weight=p.weight.astype(dtype)) for p in self.structure.projections))
        return Learner(structure, self.dynamics, replace(self.params, dtype=np.dtype(dtype).name),
                       n_threads=self.workers.n_threads, backend=self.backend)

    def structure_changed(self, changed: dict[str, np.ndarray]) -> None:
        """Told by the structural scheduler which synapses appeared or vanished.

        Parameters
        ----------
        changed : dict[str, ndarray of bool]
            Per projection, a mask of the synapses that regrew or were removed. With
            ``optimizer_reset = "restart"`` their Adam state restarts (moments and bias-correction
            count, :meth:`.optim.Adam.reset`), so a synapse's optimiser state only ever covers the
            time it existed (or lay latent) without interruption; with ``"keep"`` nothing changes.
        """
        if self.params.optimizer_reset == "keep":
            return
        for name, mask in changed.items():
            if np.any(mask):
                self.optimizer.reset(name, mask)

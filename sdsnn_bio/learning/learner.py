"""Surrogate-gradient learning of every plastic projection (NumPy/SciPy only).

The learner trains the weights of a :class:`~sdsnn_bio.structure.Structure` in place. It is fed
either by Brian2's recorded spikes (:meth:`Learner.reconstruct`: potentials are rebuilt from the
recorded spikes and current weights) or by the NumPy kernel, which produces the same spikes as the
Brian2 network (:meth:`Learner.simulate`; tested spike for spike).

Absent synapses: the forward pass uses the *effective* weights (pruned synapses count 0), and the
gradient with respect to every potential synapse is computed densely, so a pruned synapse's latent
weight keeps learning (SD-SNN section 3 reads it to decide regeneration). A pruned neuron is silent
and has lost its synapses; the backward pass still sends it the error it would receive through its
latent outgoing weights, so the latent weights of its incoming synapses evolve as in the released
SD-SNN code (where pruned neurons only lose their input) and regeneration can revive it.

Inputs are sparse (a few thousand events per sample): a batch is a CSR matrix of shape
``(T*B, n_input)`` (row ``t*B + b``), so the input currents and the input weights' gradient are
sparse-dense products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..structure import Structure
from .bptt import backward_layer
from .kernel import LayerDynamics, LayerTrace, integrate_layer
from .loss import LOSSES, cross_entropy, predict
from .optim import Adam
from .parallel import RowBlocks, default_threads
from .surrogate import make_surrogate

__all__ = ["LearningParameters", "InputBatch", "Learner", "ForwardPass", "StepResult"]


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
    """

    surrogate: str = "fast_sigmoid"
    surrogate_scale: float | None = None
    loss: str = "rate_cross_entropy"
    logit_scale: float = 10.0
    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8

    def __post_init__(self) -> None:
        make_surrogate(self.surrogate, self.surrogate_scale)  # validates the name and scale
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


@dataclass(frozen=True)
class InputBatch:
    """Input spikes of B samples as a sparse (T*B, n_input) matrix, time-major rows."""

    matrix: sp.csr_matrix
    n_samples: int
    n_steps: int

    @property
    def transposed(self) -> sp.csr_matrix:
        """``matrix.T`` in CSR form (n_input, T*B), for the input weights' gradient."""
        cached = self.__dict__.get("_transposed")
        if cached is None:
            cached = self.matrix.T.tocsr()
            object.__setattr__(self, "_transposed", cached)
        return cached

    @classmethod
    def from_samples(cls, samples, n_steps: int, n_input: int) -> "InputBatch":
        """Build from per-sample ``(channels, steps)`` arrays (see ``data.encoding``)."""
        samples = list(samples)
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
        return self.traces[self.order[-1]]


@dataclass(frozen=True)
class StepResult:
    loss: float
    predictions: np.ndarray
    labels: np.ndarray
    spike_counts: dict[str, int]

    @property
    def n_correct(self) -> int:
        return int(np.count_nonzero(self.predictions == self.labels))


class Learner:
    """Trains the projections of ``structure`` in place with surrogate-gradient BPTT and Adam.

    Parameters
    ----------
    structure : Structure
        The network's structure; its weight arrays are updated in place.
    dynamics : dict[str, LayerDynamics]
        Per neuron population (hidden layers and output).
    params : LearningParameters
    n_threads : int, optional
        Threads for the sparse products and the optimiser (default: the cores available).
    """

    def __init__(
        self, structure: Structure, dynamics: dict, params: LearningParameters,
        n_threads: int | None = None,
    ) -> None:
        self.structure = structure
        self.workers = RowBlocks(default_threads() if n_threads is None else n_threads)
        self.dynamics = dict(dynamics)
        self.params = params
        self.surrogate = make_surrogate(params.surrogate, params.surrogate_scale)
        self.optimizer = Adam(params.learning_rate, params.beta1, params.beta2, params.epsilon)
        self.order = tuple(p.name for p in structure.populations[1:])
        missing = set(self.order) - set(self.dynamics)
        if missing:
            raise ValueError(f"dynamics: missing layers {sorted(missing)}")

    # ------------------------------------------------------------------ forward
    def _currents(self, presynaptic, weight: np.ndarray, n_steps: int, n_samples: int) -> np.ndarray:
        if sp.issparse(presynaptic):
            flat = self.workers.sparse_matmul(presynaptic, weight)
        else:
            flat = presynaptic.reshape(n_steps * n_samples, -1).astype(np.float64) @ weight
        return np.asarray(flat).reshape(n_steps, n_samples, weight.shape[1])

    def _run(self, batch: InputBatch, recorded: dict | None) -> ForwardPass:
        traces = {}
        presynaptic = batch.matrix
        for name in self.order:
            projection = self.structure.projection_into(name)
            currents = self._currents(
                presynaptic, projection.effective_weight(), batch.n_steps, batch.n_samples
            )
            given = None if recorded is None else recorded[name]
            trace = integrate_layer(
                currents, self.dynamics[name], self.structure.population(name).alive, given
            )
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
        return out.spikes.sum(axis=0), out.potential.mean(axis=0)

    def loss(self, forward: ForwardPass, labels: np.ndarray) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        """Loss and its gradient w.r.t. output spikes and potentials (each (T, B, C) or None)."""
        out = forward.output()
        n_steps = out.spikes.shape[0]
        counts, mean_potential = self.readout(forward)
        scale = self.params.logit_scale
        if self.params.loss == "rate_cross_entropy":
            value, grad_logits = cross_entropy(scale * counts / n_steps, labels)
            grad = np.broadcast_to(grad_logits * (scale / n_steps), out.spikes.shape)
            return value, np.ascontiguousarray(grad), None
        value, grad_logits = cross_entropy(scale * mean_potential, labels)
        grad = np.broadcast_to(grad_logits * (scale / n_steps), out.potential.shape)
        return value, None, np.ascontiguousarray(grad)

    # ------------------------------------------------------------------ backward
    def _backprop_weight(self, projection) -> np.ndarray:
        """Weights through which errors reach the source layer (latent for pruned sources)."""
        source_dead = ~self.structure.population(projection.source).alive
        weight = projection.effective_weight()
        if source_dead.any():
            weight[source_dead] = projection.weight[source_dead]
        return weight

    def gradients(self, batch: InputBatch, forward: ForwardPass, labels: np.ndarray):
        """Loss and dL/dW for every potential synapse of every projection."""
        value, grad_spikes, grad_potential = self.loss(forward, labels)
        grads = {}
        n_steps, n_samples = batch.n_steps, batch.n_samples
        for index in range(len(self.order) - 1, -1, -1):
            name = self.order[index]
            trace = forward.traces[name]
            grad_currents = backward_layer(
                trace, self.dynamics[name], self.surrogate, grad_spikes, grad_potential
            )
            projection = self.structure.projection_into(name)
            flat_grad = grad_currents.reshape(n_steps * n_samples, -1)
            if index == 0:
                grads[projection.name] = self.workers.sparse_matmul(batch.transposed, flat_grad)
                break
            source_spikes = forward.traces[self.order[index - 1]].spikes
            flat_source = source_spikes.reshape(n_steps * n_samples, -1).astype(np.float64)
            grads[projection.name] = flat_source.T @ flat_grad
            grad_spikes = (flat_grad @ self._backprop_weight(projection).T).reshape(
                n_steps, n_samples, -1
            )
            grad_potential = None
        return value, grads

    # ------------------------------------------------------------------ training
    def train_step(self, batch: InputBatch, labels, recorded_spikes: dict | None = None) -> StepResult:
        """Forward (kernel, or reconstruction from recorded spikes), backward, Adam update."""
        labels = np.asarray(labels, dtype=np.int64)
        forward = self.simulate(batch) if recorded_spikes is None else self.reconstruct(batch, recorded_spikes)
        value, grads = self.gradients(batch, forward, labels)
        if not np.isfinite(value):
            raise FloatingPointError(f"training loss is {value}: the run diverged")
        weights = {p.name: p.weight for p in self.structure.projections}
        self.optimizer.update(weights, grads, self.workers)
        counts, mean_potential = self.readout(forward)
        return StepResult(
            value, predict(counts, mean_potential), labels,
            {name: int(forward.traces[name].spikes.sum()) for name in self.order},
        )

    def evaluate(self, batch: InputBatch) -> np.ndarray:
        """Predictions of the kernel for a batch (no learning)."""
        counts, mean_potential = self.readout(self.simulate(batch))
        return predict(counts, mean_potential)

    def structure_changed(self, regrown: dict[str, np.ndarray]) -> None:
        """Told by the structural scheduler which synapses regrew: their moments restart."""
        for name, mask in regrown.items():
            if np.any(mask):
                self.optimizer.reset(name, mask)

"""Run any registered neuron and synapse model over time, forwards and backwards (NumPy).

A neuron model's discrete-time update (``step``) and surrogate-gradient ``backward_step`` live in
the model's own file (:mod:`sdsnn_bio.model.neurons`), and so does a synapse model's ``split`` of
the presynaptic input into a voltage jump and a membrane drive (:mod:`sdsnn_bio.model.synapses`).
:class:`~sdsnn_bio.dynamics.ModelDynamics` pairs the two for one layer; :func:`integrate_model` and
:func:`backward_model` give the learner what
:func:`~sdsnn_bio.learning.kernel.integrate_layer` and :func:`~sdsnn_bio.learning.bptt.backward_layer`
give for the default model::

    jump, drive = synapse.split(J)                       J_t: summed weights of the presynaptic spikes
    for t = 0 .. T-1:   record_t, state = neuron.step(state, jump_t, drive_t, ...)
    for t = T-1 .. 0:   dL/djump_t, dL/ddrive_t, adjoint = neuron.backward_step(adjoint, record_t, ...)
    dL/dJ = synapse.split_backward(dL/djump, dL/ddrive)

The models are handed in as objects: this module imports neither Brian2 nor the model package.
With ``compiled=True`` the neuron model's own Numba loops (``compiled_forward``,
``compiled_backward``) replace the per-step NumPy calls (the learner's ``"numba"`` backend).
The default model (LIF neurons, voltage-jump synapses) keeps the faster loops of :mod:`.kernel`,
:mod:`.bptt` and :mod:`.fused`; run through this module it gives the same spikes and potentials bit
for bit (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .kernel import LayerTrace, as_real

__all__ = ["ModelTrace", "integrate_model", "backward_model"]


@dataclass(frozen=True)
class ModelTrace(LayerTrace):
    """A :class:`~.kernel.LayerTrace` with the model's extra per-step quantities.

    Attributes
    ----------
    records : dict[str, ndarray]
        Per name in the neuron model's ``record_names`` (e.g. ALIF's ``threshold_adaptation``), an
        array of shape (T, B, N) that its ``backward_step`` reads.
    """

    records: dict = field(default_factory=dict)


def integrate_model(dynamics, currents: np.ndarray, alive: np.ndarray | None = None,
                    spikes: np.ndarray | None = None, compiled: bool = False) -> ModelTrace:
    """Integrate a layer of any registered model over a batch (as :func:`~.kernel.integrate_layer`).

    Parameters
    ----------
    dynamics : ModelDynamics
        The layer's neuron and synapse records (:class:`sdsnn_bio.dynamics.ModelDynamics`).
    currents : ndarray, shape (T, B, N)
        ``J_t``: summed weights of the presynaptic spikes of each step.
    alive : ndarray of bool, shape (N,), optional
        Pruned neurons (False) never fire.
    spikes : ndarray of bool, shape (T, B, N), optional
        Recorded spikes: the potentials are reconstructed from them.
    compiled : bool
        Run the neuron model's compiled loop (Numba, ``compiled_forward``) instead of its NumPy
        ``step``: the same spikes and potentials bit for bit (tested).

    Returns
    -------
    ModelTrace
    """
    currents = as_real(currents)  # float32 stays float32 (the learner's dtype)
    if currents.ndim != 3:
        raise ValueError(f"currents: expected shape (T, B, N), got {currents.shape}")
    if spikes is not None and spikes.shape != currents.shape:
        raise ValueError(f"spikes: expected shape {currents.shape}, got {spikes.shape}")
    n_steps, n_samples, n_neurons = currents.shape
    neuron = dynamics.neuron
    jump, drive = dynamics.synapse.split(currents)
    if compiled:
        dead = np.zeros(n_neurons, dtype=bool) if alive is None else ~np.asarray(alive, dtype=bool)
        potential, out_spikes, not_refractory, records, counts = neuron.compiled_forward(jump, drive, dead, spikes)
        return ModelTrace(potential, out_spikes, not_refractory, counts, records)
    potential = np.empty(currents.shape, dtype=currents.dtype)
    out_spikes = np.empty(currents.shape, dtype=bool)
    refractory = neuron.refractory_steps > 0
    not_refractory = np.empty(currents.shape, dtype=bool) if refractory else None
    records = {name: np.empty(currents.shape, dtype=currents.dtype) for name in neuron.record_names}
    dead = None if alive is None else ~np.asarray(alive, dtype=bool)
    if dead is not None and not dead.any():
        dead = None
    counts = np.zeros((n_samples, n_neurons), dtype=np.int64)
    state = neuron.initial_state(n_samples, n_neurons, currents.dtype)
    for t in range(n_steps):
        record, state = neuron.step(
            state, None if jump is None else jump[t], None if drive is None else drive[t],
            dead, t, None if spikes is None else spikes[t],
        )
        potential[t] = record["potential"]
        out_spikes[t] = record["spikes"]
        if refractory:
            not_refractory[t] = record["not_refractory"]
        for name in neuron.record_names:
            records[name][t] = record[name]
        counts += record["spikes"]
    return ModelTrace(potential, out_spikes, not_refractory, counts, records)


def backward_model(dynamics, trace: ModelTrace, surrogate, grad_spikes: np.ndarray | None = None,
                   grad_potential: np.ndarray | None = None, compiled: bool = False) -> np.ndarray:
    """``dL/dJ_t`` of a layer of any registered model (as :func:`~.bptt.backward_layer`).

    Parameters
    ----------
    dynamics : ModelDynamics
    trace : ModelTrace
        Its forward pass.
    surrogate : Surrogate
    grad_spikes, grad_potential : ndarray, shape (T, B, N), optional
        ``dL/ds_t`` from the layers above (or the loss) and direct ``dL/du_t``.
    compiled : bool
        Run the neuron model's compiled loop (``compiled_backward``; equal to the NumPy steps to
        rounding).
    """
    n_steps, n_samples, n_neurons = trace.potential.shape
    neuron = dynamics.neuron
    if compiled:
        grad_jump, grad_drive = neuron.compiled_backward(trace, surrogate, grad_spikes, grad_potential)
        return dynamics.synapse.split_backward(grad_jump, grad_drive)
    dtype = trace.potential.dtype
    grad_jump = np.empty(trace.potential.shape, dtype=dtype)
    grad_drive = np.empty(trace.potential.shape, dtype=dtype)
    adjoint = neuron.initial_adjoint(n_samples, n_neurons, dtype)
    for t in range(n_steps - 1, -1, -1):
        record = {
            "potential": trace.potential[t], "spikes": trace.spikes[t],
            "not_refractory": None if trace.not_refractory is None else trace.not_refractory[t],
            **{name: values[t] for name, values in trace.records.items()},
        }
        grad_jump[t], grad_drive[t], adjoint = neuron.backward_step(
            adjoint, record, None if grad_spikes is None else grad_spikes[t],
            None if grad_potential is None else grad_potential[t], surrogate,
        )
    return dynamics.synapse.split_backward(grad_jump, grad_drive)

"""NumPy integration of LIF layers, step for step as Brian2 simulates them.

With ``u_t`` the potential tested against the threshold at step ``t``, ``v_t`` the potential at the
end of step ``t``, ``I_t`` the summed weights of the presynaptic spikes of step ``t`` and
``r_t`` = "not refractory" (``t - last spike >= refractory steps``), Brian2's schedule (state update,
threshold, synapses, reset) gives::

    u_t = decay * v_{t-1}   if r_t else v_{t-1}        decay = exp(-dt / tau_membrane)
    s_t = (u_t > v_threshold) and r_t and alive
    v_t = v_reset if s_t, else u_t + I_t if r_t, else u_t

Input arriving during a spiking step is lost to the reset, and input arriving during the refractory
period is lost too: Brian2 makes every write to an ``(unless refractory)`` variable, synaptic ones
included, conditional on ``not_refractory``.

with ``v_{-1} = 0`` at the start of each sample. :func:`integrate_layer` computes spikes from the
threshold (the training kernel) or, given recorded spikes (e.g. from a Brian2 ``SpikeMonitor``),
reconstructs the potentials that produced them. Equivalence with the Brian2 network is tested
spike for spike (``tests/test_learning.py``). :mod:`.fused` compiles the same loop (Numba) with the
input currents accumulated inside it; this module is the NumPy reference it is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The layer constants are the seam between the Brian2 model (which derives them) and this kernel:
# defined in sdsnn_bio.dynamics, importable from here as before.
from ..dynamics import LayerDynamics

__all__ = ["LayerDynamics", "LayerTrace", "integrate_layer", "as_real"]


def as_real(array) -> np.ndarray:
    """``array`` as float32 if it is float32, else as float64 (the learner's two types)."""
    array = np.asarray(array)
    return array if array.dtype == np.float32 else array.astype(np.float64, copy=False)


@dataclass(frozen=True)
class LayerTrace:
    """What one layer did over a batch: arrays of shape (T, B, N).

    Attributes
    ----------
    potential : ndarray of float64 or float32
        ``u_t``, the potential tested against the threshold (the type of the input currents).
    spikes : ndarray of bool
        ``s_t``.
    not_refractory : ndarray of bool or None
        ``r_t``; None when the layer has no refractory period (always True).
    spike_counts : ndarray of int64, shape (B, N), or None
        Spikes per sample and neuron (``spikes.sum(axis=0)``), counted during the integration;
        None if not counted (then :meth:`counts` sums ``spikes``).
    """

    potential: np.ndarray
    spikes: np.ndarray
    not_refractory: np.ndarray | None
    spike_counts: np.ndarray | None = None

    def counts(self) -> np.ndarray:
        """Spikes per sample and neuron, shape (B, N)."""
        if self.spike_counts is not None:
            return self.spike_counts
        return self.spikes.sum(axis=0)


def integrate_layer(
    currents: np.ndarray,
    dynamics: LayerDynamics,
    alive: np.ndarray | None = None,
    spikes: np.ndarray | None = None,
) -> LayerTrace:
    """Integrate a LIF layer over a batch.

    Parameters
    ----------
    currents : ndarray, shape (T, B, N)
        ``I_t``: summed weights of the presynaptic spikes of each step (normalised potential).
        float32 currents are integrated in float32 (the learner's ``dtype``), anything else in
        float64.
    dynamics : LayerDynamics
    alive : ndarray of bool, shape (N,), optional
        Pruned neurons (False) never fire.
    spikes : ndarray of bool, shape (T, B, N), optional
        Recorded spikes: if given, the potentials are reconstructed from them instead of the
        spikes being computed from the threshold.

    Returns
    -------
    LayerTrace
    """
    currents = as_real(currents)
    if currents.ndim != 3:
        raise ValueError(f"currents: expected shape (T, B, N), got {currents.shape}")
    n_steps, n_samples, n_neurons = currents.shape
    if spikes is not None and spikes.shape != currents.shape:
        raise ValueError(f"spikes: expected shape {currents.shape}, got {spikes.shape}")
    potential = np.empty_like(currents)
    out_spikes = np.empty(currents.shape, dtype=bool) if spikes is None else np.asarray(spikes, bool)
    refractory = dynamics.refractory_steps > 0
    not_refractory = np.empty(currents.shape, dtype=bool) if refractory else None
    last_spike = np.full((n_samples, n_neurons), -(10**9), dtype=np.int64) if refractory else None
    v = np.zeros((n_samples, n_neurons), dtype=currents.dtype)
    dead = None if alive is None else ~np.asarray(alive, dtype=bool)
    if dead is not None and not dead.any():
        dead = None
    decay, threshold, reset = dynamics.decay, dynamics.threshold, dynamics.reset
    counts = np.zeros((n_samples, n_neurons), dtype=np.int64)

    for t in range(n_steps):
        u = potential[t]
        if refractory:
            r = not_refractory[t]
            np.greater_equal(t - last_spike, dynamics.refractory_steps, out=r)
            np.multiply(v, decay, out=u)
            np.copyto(u, v, where=~r)
        else:
            np.multiply(v, decay, out=u)
        s = out_spikes[t]
        if spikes is None:
            np.greater(u, threshold, out=s)
            if refractory:
                s &= r
            if dead is not None:
                s[:, dead] = False
        np.add(u, currents[t], out=v)
        if refractory:
            np.copyto(v, u, where=~r)
        np.copyto(v, reset, where=s)
        counts += s
        if refractory:
            last_spike[s] = t
    return LayerTrace(potential, out_spikes, not_refractory, counts)

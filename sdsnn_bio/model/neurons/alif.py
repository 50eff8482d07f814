"""Adaptive-threshold leaky integrate-and-fire neuron (ALIF), after Bellec et al. 2018.

Bellec, Salaj, Subramoney, Legenstein & Maass, "Long short-term memory and learning-to-learn in
networks of spiking neurons", NeurIPS 2018: each spike raises the neuron's firing threshold, which
relaxes back with its own, slower time constant, so a neuron that has just been active needs more
input to fire again (spike-frequency adaptation). Here the threshold is ``v_threshold + b`` with
``b`` (``threshold_adaptation``) rising by ``beta`` (``adaptation_increment``) per spike and decaying
with ``tau_adaptation``; the membrane is the LIF one (:mod:`.lif`).

Brian2 (:meth:`AdaptiveNeuronParameters.equations`)::

    dv/dt = -v / tau_membrane : 1 (unless refractory)
    dthreshold_adaptation/dt = -threshold_adaptation / tau_adaptation : 1
    threshold: v > v_threshold + threshold_adaptation and alive
    reset:     v = v_reset;  threshold_adaptation += adaptation_increment
    refractory: refractory_period

The adaptation decays during the refractory period too (it has no ``unless refractory`` flag).

Discrete time (:class:`ALIFDynamics`), in Brian2's order (state update, threshold, synapses, reset)
and the notation of :mod:`.lif`, with ``a_t`` the adaptation after step ``t``::

    u_t  = decay * v_{t-1} + d_t   if r_t else v_{t-1}
    a'_t = adaptation_decay * a_{t-1}                     adaptation_decay = exp(-dt / tau_adaptation)
    s_t  = (u_t > v_threshold + a'_t) and r_t and alive
    v_t  = v_reset if s_t, else u_t + J_t if r_t, else u_t
    a_t  = a'_t + beta * s_t

Backward step: the reset of ``v`` and ``r_t`` are treated as constants (as for LIF), but the
adaptation is differentiated through the spike (``s_t -> a_t``, as in Bellec et al.'s BPTT), which
carries the error of a spike to the neuron's later thresholds. With ``x_t = u_t - v_threshold - a'_t``::

    dL/ds_t (total) = dL/ds_t + beta dL/da_t
    g_t             = sigma'(x_t) r_t dL/ds_t (total)
    dL/du_t  = (1 - s_t) dL/dv_t + g_t + dL/du_t (direct)
    dL/da'_t = dL/da_t - g_t,        dL/da_{t-1} = adaptation_decay dL/da'_t
    dL/dJ_t, dL/dd_t, dL/dv_{t-1}:  as for LIF

With ``beta = 0`` the model is the LIF neuron, step for step (tested).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from brian2 import Equations, Quantity, ms, second

from ..checks import check_number, check_time
from .base import DEVELOPMENT_STATE
from .lif import SAMPLE_RESET, LIFDynamics, NeuronParameters, _or_empty, real_type

__all__ = ["AdaptiveNeuronParameters", "ALIF", "ALIFDynamics", "alif_equations"]


def alif_equations(synaptic_input: str = "") -> Equations:
    """Adaptive-threshold LIF neuron with the per-neuron state of SD-SNN section 2.

    External constants: those of :func:`~sdsnn_bio.model.neurons.lif.lif_equations` and
    ``tau_adaptation`` (time), ``adaptation_increment`` (normalised potential).

    Parameters
    ----------
    synaptic_input : str
        Name of a variable driving the membrane (current-based synapses), or ``""``.
    """
    drive = f"({synaptic_input} - v)" if synaptic_input else "-v"
    return Equations(
        f"dv/dt = {drive} / tau_membrane : 1 (unless refractory)"
        "  # normalised membrane potential (0 = rest)\n"
        "dthreshold_adaptation/dt = -threshold_adaptation / tau_adaptation : 1"
        "  # b: rise of the firing threshold above v_threshold"
        + DEVELOPMENT_STATE
    )


@dataclass(frozen=True)
class AdaptiveNeuronParameters(NeuronParameters):
    """Adaptive-threshold LIF neuron (Bellec et al. 2018), registered as ``"alif"``.

    Parameters
    ----------
    tau_membrane, v_threshold, v_reset, refractory
        As for :class:`~sdsnn_bio.model.neurons.lif.NeuronParameters`.
    tau_adaptation : Quantity
        Time constant of the threshold adaptation (time, > 0). Default 100 ms.
    adaptation_increment : float
        ``beta``: rise of the threshold per spike (normalised potential, >= 0). Default 0.2.
    """

    name: ClassVar[str] = "alif"
    threshold: ClassVar[str] = "v > v_threshold + threshold_adaptation and alive"
    reset: ClassVar[str] = "v = v_reset\nthreshold_adaptation += adaptation_increment"
    sample_reset: ClassVar[str] = SAMPLE_RESET + "\nthreshold_adaptation = 0"

    tau_adaptation: Quantity = field(default_factory=lambda: 100 * ms)
    adaptation_increment: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        check_time(owner, "tau_adaptation", self.tau_adaptation)
        check_number(owner, "adaptation_increment", self.adaptation_increment, low=0.0)

    def equations(self, synaptic_input: str = "") -> Equations:
        """The model's Brian2 ``Equations`` (see :func:`alif_equations`)."""
        return alif_equations(synaptic_input)

    def namespace(self) -> dict:
        """External constants of :meth:`equations`, threshold, reset and refractoriness."""
        return {**super().namespace(), "tau_adaptation": self.tau_adaptation,
                "adaptation_increment": float(self.adaptation_increment)}

    def dynamics(self, dt_seconds: float) -> "ALIFDynamics":
        """The discrete-time update on a grid of ``dt_seconds`` (plain floats, no Brian2)."""
        lif = super().dynamics(dt_seconds)
        return ALIFDynamics(
            decay=lif.decay, threshold=lif.threshold, reset=lif.reset,
            refractory_steps=lif.refractory_steps,
            adaptation_decay=float(np.exp((-dt_seconds) / float(self.tau_adaptation / second))),
            adaptation_increment=float(self.adaptation_increment),
        )


#: The ALIF model under its short name.
ALIF = AdaptiveNeuronParameters


@dataclass(frozen=True)
class ALIFDynamics(LIFDynamics):
    """Discrete-time ALIF update and its backward step (module docstring), on (B, N) arrays.

    Parameters
    ----------
    decay, threshold, reset, refractory_steps
        As for :class:`~sdsnn_bio.model.neurons.lif.LIFDynamics`.
    adaptation_decay : float
        ``exp(-dt / tau_adaptation)``.
    adaptation_increment : float
        ``beta``.
    """

    adaptation_decay: float = 1.0
    adaptation_increment: float = 0.0

    record_names: ClassVar[tuple[str, ...]] = ("threshold_adaptation",)

    def initial_state(self, n_samples: int, n_neurons: int, dtype=np.float64) -> dict:
        """State at the start of a sample: at rest, not refractory, no adaptation (of ``dtype``)."""
        return {**super().initial_state(n_samples, n_neurons, dtype),
                "threshold_adaptation": np.zeros((n_samples, n_neurons), dtype=dtype)}

    def step(self, state: dict, jump, drive, dead, t: int, given=None) -> tuple[dict, dict]:
        """One time step: ``(record, new_state)`` (module docstring; arguments as LIF's)."""
        v = state["v"]
        r = self.not_refractory(state, t)
        u = v * self.decay
        if drive is not None:
            u = u + drive
        if r is not None:
            u = np.where(r, u, v)
        adaptation = state["threshold_adaptation"] * self.adaptation_decay
        if given is not None:
            s = np.asarray(given, dtype=bool)
        else:
            s = u > self.threshold + adaptation
            if r is not None:
                s &= r
            if dead is not None:
                s[:, dead] = False
        v_new = u if jump is None else u + jump
        if r is not None and jump is not None:
            v_new = np.where(r, v_new, u)
        v_new = np.where(s, self.reset, v_new)
        record = {"potential": u, "spikes": s, "not_refractory": r, "threshold_adaptation": adaptation}
        new_state = {"v": v_new, "last_spike": np.where(s, t, state["last_spike"]),
                     "threshold_adaptation": adaptation + self.adaptation_increment * s.astype(adaptation.dtype)}
        return record, new_state

    def initial_adjoint(self, n_samples: int, n_neurons: int, dtype=np.float64) -> dict:
        """``dL/dv`` and ``dL/da`` after the last step: 0 (of ``dtype``)."""
        return {"v": np.zeros((n_samples, n_neurons), dtype=dtype),
                "threshold_adaptation": np.zeros((n_samples, n_neurons), dtype=dtype)}

    def backward_step(self, adjoint: dict, record: dict, grad_spikes, grad_potential, surrogate):
        """One step of BPTT: ``(dL/dJ_t, dL/dd_t, adjoint of step t-1)`` (module docstring)."""
        r = record["not_refractory"]
        through = adjoint["v"] * ~record["spikes"]
        grad_jump = through if r is None else through * r
        grad_s = self.adaptation_increment * adjoint["threshold_adaptation"]
        if grad_spikes is not None:
            grad_s = grad_s + grad_spikes
        x = record["potential"] - (self.threshold + record["threshold_adaptation"])
        g = surrogate.derivative(x) * grad_s
        if r is not None:
            g = g * r
        grad_u = through + g
        if grad_potential is not None:
            grad_u = grad_u + grad_potential
        grad_adaptation = (adjoint["threshold_adaptation"] - g) * self.adaptation_decay
        if r is None:
            return grad_jump, grad_u, {"v": grad_u * self.decay, "threshold_adaptation": grad_adaptation}
        return grad_jump, grad_u * r, {"v": np.where(r, grad_u * self.decay, grad_u),
                                       "threshold_adaptation": grad_adaptation}

    # ------------------------------------------------------------------ compiled (Numba)
    def compiled_forward(self, jump, drive, dead, given) -> tuple:
        """All steps of :meth:`step` in one compiled loop (Numba; bit for bit the NumPy steps).

        Returns
        -------
        potential, spikes, not_refractory (or None), records (dict), counts
        """
        forward, _ = _compiled_alif()
        dtype, potential, spikes, not_refractory, counts = self._compiled_outputs(jump, drive)
        real = dtype.type  # scalars of the arrays' type: no promotion inside the loop
        adaptation = np.empty(potential.shape, dtype=dtype)
        refractory = self.refractory_steps > 0
        forward(_or_empty(jump, dtype), _or_empty(drive, dtype), jump is not None, drive is not None,
                real(self.decay), real(self.threshold), real(self.reset), int(self.refractory_steps),
                real(self.adaptation_decay), real(self.adaptation_increment),
                np.ascontiguousarray(dead, dtype=bool), _or_empty(given, bool), given is not None,
                potential, spikes, not_refractory, adaptation, counts)
        return (potential, spikes, not_refractory if refractory else None,
                {"threshold_adaptation": adaptation}, counts)

    def compiled_backward(self, trace, surrogate, grad_spikes, grad_potential) -> tuple:
        """All steps of :meth:`backward_step` in one compiled loop: ``(dL/djump, dL/ddrive)``."""
        _, backward = _compiled_alif()
        shape, dtype = trace.potential.shape, real_type(trace.potential)
        real = dtype.type
        sigma = surrogate.derivative(
            trace.potential - (self.threshold + trace.records["threshold_adaptation"]))
        grad_jump, grad_drive = np.empty(shape, dtype=dtype), np.empty(shape, dtype=dtype)
        has_refractory = trace.not_refractory is not None
        backward(np.ascontiguousarray(trace.spikes), _or_empty(trace.not_refractory, bool), has_refractory,
                 real(self.decay), real(self.adaptation_decay), real(self.adaptation_increment),
                 _or_empty(sigma, dtype), _or_empty(grad_spikes, dtype), grad_spikes is not None,
                 _or_empty(grad_potential, dtype), grad_potential is not None, grad_jump, grad_drive)
        return grad_jump, grad_drive


@functools.lru_cache(maxsize=None)
def _compiled_alif():
    """The loops below compiled by Numba (imported here, on first use; cached on disk)."""
    import numba

    jit = numba.njit(nogil=True, cache=True)
    return jit(_alif_forward), jit(_alif_backward)


# ---------------------------------------------------------------------------------------- compiled
# The same update and backward step as scalar loops over (sample, neuron, time), compiled by Numba
# when the learner's backend is "numba" (:meth:`ALIFDynamics.compiled`). Same operations in the same
# order as :meth:`ALIFDynamics.step`, so the spikes and potentials are those of the NumPy step bit
# for bit (tested); the backward loop, which reads the surrogate derivative ``sigma'(x_t)`` computed beforehand in
# NumPy, agrees with :meth:`ALIFDynamics.backward_step` to rounding.
def _alif_forward(jump, drive, has_jump, has_drive, decay, threshold, reset, refractory_steps,
                  adaptation_decay, adaptation_increment, dead, given, use_given,
                  potential, spikes, not_refractory, adaptation_record, counts):
    n_steps, n_samples, n_neurons = potential.shape
    zero, one = potential.dtype.type(0.0), potential.dtype.type(1.0)  # literals of the arrays' type
    v_all = np.zeros((n_samples, n_neurons), potential.dtype)
    adaptation_all = np.zeros((n_samples, n_neurons), potential.dtype)
    last_all = np.full((n_samples, n_neurons), -(10**9), dtype=np.int64)
    for t in range(n_steps):  # time outermost: every array is read and written row by row
        for b in range(n_samples):
            v_row, adaptation_row, last_row = v_all[b], adaptation_all[b], last_all[b]
            for n in range(n_neurons):
                v = v_row[n]
                r = True if refractory_steps == 0 else (t - last_row[n]) >= refractory_steps
                u = v * decay
                if has_drive:
                    u = u + drive[t, b, n]
                if not r:
                    u = v
                adaptation = adaptation_row[n] * adaptation_decay
                if use_given:
                    s = given[t, b, n]
                else:
                    s = (u > threshold + adaptation) and r and not dead[n]
                potential[t, b, n] = u
                spikes[t, b, n] = s
                if refractory_steps > 0:
                    not_refractory[t, b, n] = r
                adaptation_record[t, b, n] = adaptation
                if s:
                    v_row[n] = reset
                    last_row[n] = t
                    counts[b, n] += 1
                    adaptation_row[n] = adaptation + adaptation_increment * one
                else:
                    v_row[n] = u + jump[t, b, n] if (has_jump and r) else u
                    adaptation_row[n] = adaptation + adaptation_increment * zero


def _alif_backward(spikes, not_refractory, has_refractory, decay,
                   adaptation_decay, adaptation_increment, surrogate,
                   grad_spikes, has_grad_spikes, grad_potential, has_grad_potential, grad_jump, grad_drive):
    n_steps, n_samples, n_neurons = spikes.shape
    zero, one = grad_jump.dtype.type(0.0), grad_jump.dtype.type(1.0)  # literals of the arrays' type
    grad_v_all = np.zeros((n_samples, n_neurons), grad_jump.dtype)
    grad_a_all = np.zeros((n_samples, n_neurons), grad_jump.dtype)
    for t in range(n_steps - 1, -1, -1):
        for b in range(n_samples):
            grad_v_row, grad_a_row = grad_v_all[b], grad_a_all[b]
            for n in range(n_neurons):
                r = not_refractory[t, b, n] if has_refractory else True
                through = zero if spikes[t, b, n] else grad_v_row[n]
                grad_jump[t, b, n] = through if r else zero
                grad_a = grad_a_row[n]
                grad_s = adaptation_increment * grad_a
                if has_grad_spikes:
                    grad_s = grad_s + grad_spikes[t, b, n]
                g = surrogate[t, b, n] * grad_s if r else zero
                grad_u = through + g
                if has_grad_potential:
                    grad_u = grad_u + grad_potential[t, b, n]
                grad_a_row[n] = (grad_a - g) * adaptation_decay
                grad_drive[t, b, n] = grad_u if r else zero
                grad_v_row[n] = grad_u * (decay if r else one)

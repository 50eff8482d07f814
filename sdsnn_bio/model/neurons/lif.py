"""Leaky integrate-and-fire neuron (LIF), normalised potential; SD-SNN section "Spiking neuron model".

Brian2 (:meth:`NeuronParameters.equations`)::

    dv/dt = -v / tau_membrane : 1 (unless refractory)
    threshold: v > v_threshold and alive          reset: v = v_reset
    refractory: refractory_period

With a synapse model that drives the membrane through a current (``current_exponential``), the
first line becomes ``dv/dt = (synaptic_current - v) / tau_membrane``.

Discrete time (:class:`LIFDynamics`, the training kernels' update; Brian2's order per step is state
update, threshold, synaptic propagation, reset), with ``u_t`` the potential tested against the
threshold, ``r_t`` = "not refractory", ``d_t`` the synaptic drive entering the state update (0 for
voltage jumps) and ``J_t`` the voltage jump of the presynaptic spikes of step ``t`` (0 for current
synapses)::

    u_t = decay * v_{t-1} + d_t    if r_t else v_{t-1}          decay = exp(-dt / tau_membrane)
    s_t = (u_t > v_threshold) and r_t and alive
    v_t = v_reset if s_t, else u_t + J_t if r_t, else u_t

Backward step (surrogate gradient ``sigma'``; the reset and ``r_t`` are treated as constants)::

    dL/dJ_t = (1 - s_t) r_t dL/dv_t
    dL/du_t = (1 - s_t) dL/dv_t + sigma'(u_t - v_threshold) r_t dL/ds_t + dL/du_t (direct)
    dL/dd_t = r_t dL/du_t,    dL/dv_{t-1} = (decay if r_t else 1) dL/du_t

With voltage-jump synapses the learner runs the equivalent, faster loops of
:mod:`sdsnn_bio.learning.kernel` (NumPy), :mod:`sdsnn_bio.learning.bptt` and the fused
:mod:`sdsnn_bio.learning.fused` (Numba); :class:`LIFDynamics` is tested to give the same spikes and
potentials bit for bit. With current-based synapses the learner runs :class:`LIFDynamics`: its NumPy
``step``, or its compiled loops (``compiled_forward``, ``compiled_backward``) with the ``"numba"``
backend.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from brian2 import Equations, Quantity, ms, second

from ...dynamics import LayerDynamics
from ..checks import check_number, check_time
from .base import DEVELOPMENT_STATE, refractory_steps

__all__ = ["NeuronParameters", "LIF", "LIFDynamics", "lif_equations", "THRESHOLD", "RESET",
           "SAMPLE_RESET"]

#: Threshold condition: pruned neurons (alive == False) never fire.
THRESHOLD = "v > v_threshold and alive"
#: Reset after a spike.
RESET = "v = v_reset"
#: Executed at the start of every sample window: refractoriness forgotten, back to rest. (Writes to
#: ``v`` are conditional on ``not_refractory``, hence the order.)
SAMPLE_RESET = "lastspike = -1e9*second\nnot_refractory = True\nv = 0"


def lif_equations(synaptic_input: str = "") -> Equations:
    """Leaky integrate-and-fire neuron with the per-neuron state of SD-SNN section 2.

    External constants (supplied through the group's ``namespace``): ``tau_membrane`` (time),
    ``v_threshold``, ``v_reset`` (normalised potential) and ``refractory_period`` (time).

    Parameters
    ----------
    synaptic_input : str
        Name of a variable driving the membrane (``"synaptic_current"`` for current-based synapses);
        ``""`` (voltage jumps): the membrane only decays between input spikes.
    """
    if synaptic_input:
        membrane = (f"dv/dt = ({synaptic_input} - v) / tau_membrane : 1 (unless refractory)"
                    "  # normalised membrane potential (0 = rest)")
    else:
        membrane = ("dv/dt = -v / tau_membrane : 1 (unless refractory)"
                    "  # normalised membrane potential (0 = rest)")
    return Equations(membrane + DEVELOPMENT_STATE)


@dataclass(frozen=True)
class NeuronParameters:
    """Leaky integrate-and-fire neuron model (normalised membrane potential), registered as ``"lif"``.

    Parameters
    ----------
    tau_membrane : Quantity
        Membrane time constant (time, > 0). Default 20 ms.
    v_threshold : float
        Firing threshold of the normalised potential (> v_reset). Default 1.
    v_reset : float
        Potential after a spike. Default 0 (the resting potential).
    refractory : Quantity
        Absolute refractory period (time, >= 0): the potential does not decay and the neuron cannot
        fire, but synaptic input still arrives (Brian2's ``(unless refractory)`` semantics).
    """

    #: Name in the registry (``network.neuron_model``).
    name: ClassVar[str] = "lif"
    #: Brian2 threshold condition, reset code and start-of-sample reset.
    threshold: ClassVar[str] = THRESHOLD
    reset: ClassVar[str] = RESET
    sample_reset: ClassVar[str] = SAMPLE_RESET
    #: The refractoriness given to Brian2 (a constant of the namespace).
    refractory_expression: ClassVar[str] = "refractory_period"

    tau_membrane: Quantity = field(default_factory=lambda: 20 * ms)
    v_threshold: float = 1.0
    v_reset: float = 0.0
    refractory: Quantity = field(default_factory=lambda: 0 * ms)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_time(owner, "tau_membrane", self.tau_membrane)
        check_time(owner, "refractory", self.refractory, allow_zero=True)
        check_number(owner, "v_threshold", self.v_threshold, low=1e-6)
        check_number(owner, "v_reset", self.v_reset)
        if float(self.v_reset) >= float(self.v_threshold):
            raise ValueError(
                f"{owner}.v_reset: expected a value below v_threshold="
                f"{self.v_threshold}, got {self.v_reset}"
            )

    def equations(self, synaptic_input: str = "") -> Equations:
        """The model's Brian2 ``Equations`` (see :func:`lif_equations`)."""
        return lif_equations(synaptic_input)

    def namespace(self) -> dict:
        """External constants of :meth:`equations`, threshold, reset and refractoriness."""
        return {
            "tau_membrane": self.tau_membrane,
            "v_threshold": float(self.v_threshold),
            "v_reset": float(self.v_reset),
            "refractory_period": self.refractory,
        }

    def membrane_decay(self, dt_seconds: float) -> float:
        """``exp((-dt)/tau_membrane)``, computed exactly as Brian2 computes it."""
        return float(np.exp((-dt_seconds) / float(self.tau_membrane / second)))

    def dynamics(self, dt_seconds: float) -> "LIFDynamics":
        """The discrete-time update on a grid of ``dt_seconds`` (plain floats, no Brian2)."""
        return LIFDynamics(
            decay=self.membrane_decay(dt_seconds), threshold=float(self.v_threshold),
            reset=float(self.v_reset),
            refractory_steps=refractory_steps(float(self.refractory / second), dt_seconds),
        )


#: The LIF model under its short name.
LIF = NeuronParameters


@dataclass(frozen=True)
class LIFDynamics(LayerDynamics):
    """Discrete-time LIF update and its backward step (module docstring), on (B, N) arrays.

    The constants are those of :class:`~sdsnn_bio.dynamics.LayerDynamics` (its fields and checks),
    to which this record adds the model's steps. The learner's fast LIF loops take a layer whose
    record is exactly a ``LayerDynamics``; this record runs through :mod:`sdsnn_bio.learning.stepping`.

    Parameters
    ----------
    decay : float
        ``exp(-dt / tau_membrane)``.
    threshold, reset : float
        Normalised threshold and reset potentials.
    refractory_steps : int
        Refractory period in time steps (0: none).
    """

    #: Extra per-step quantities the backward step needs, besides potential, spikes, not_refractory.
    record_names: ClassVar[tuple[str, ...]] = ()

    def initial_state(self, n_samples: int, n_neurons: int, dtype=np.float64) -> dict:
        """State at the start of a sample: at rest, not refractory (potentials of ``dtype``)."""
        return {"v": np.zeros((n_samples, n_neurons), dtype=dtype),
                "last_spike": np.full((n_samples, n_neurons), -(10**9), dtype=np.int64)}

    def not_refractory(self, state: dict, t: int) -> np.ndarray | None:
        """``r_t`` (None when the model has no refractory period: always True)."""
        if self.refractory_steps == 0:
            return None
        return (t - state["last_spike"]) >= self.refractory_steps

    def step(self, state: dict, jump, drive, dead, t: int, given=None) -> tuple[dict, dict]:
        """One time step: ``(record, new_state)`` (module docstring).

        Parameters
        ----------
        state : dict of ndarray (B, N)
        jump, drive : ndarray (B, N) or None
            Input of this step: a voltage jump after the threshold, a drive in the state update.
        dead : ndarray of bool (N,) or None
            Pruned neurons (never fire).
        t : int
            Time step within the sample.
        given : ndarray of bool (B, N), optional
            Recorded spikes replacing the threshold (reconstruction).
        """
        v = state["v"]
        r = self.not_refractory(state, t)
        u = v * self.decay
        if drive is not None:
            u = u + drive
        if r is not None:
            u = np.where(r, u, v)
        s = self.spikes(u, r, dead, given)
        v_new = u if jump is None else u + jump
        if r is not None and jump is not None:
            v_new = np.where(r, v_new, u)
        v_new = np.where(s, self.reset, v_new)
        last_spike = np.where(s, t, state["last_spike"])
        return {"potential": u, "spikes": s, "not_refractory": r}, {"v": v_new, "last_spike": last_spike}

    def spikes(self, u, r, dead, given):
        """``s_t`` from the threshold (or the recorded spikes)."""
        if given is not None:
            return np.asarray(given, dtype=bool)
        s = u > self.threshold
        if r is not None:
            s &= r
        if dead is not None:
            s[:, dead] = False
        return s

    def initial_adjoint(self, n_samples: int, n_neurons: int, dtype=np.float64) -> dict:
        """``dL/dv`` after the last step: 0 (of ``dtype``)."""
        return {"v": np.zeros((n_samples, n_neurons), dtype=dtype)}

    def backward_step(self, adjoint: dict, record: dict, grad_spikes, grad_potential, surrogate):
        """One step of BPTT: ``(dL/dJ_t, dL/dd_t, adjoint of step t-1)`` (module docstring)."""
        r = record["not_refractory"]
        through = adjoint["v"] * ~record["spikes"]
        grad_jump = through if r is None else through * r
        grad_u = through
        if grad_spikes is not None:
            direct = surrogate.derivative(record["potential"] - self.threshold) * grad_spikes
            grad_u = grad_u + (direct if r is None else direct * r)
        if grad_potential is not None:
            grad_u = grad_u + grad_potential
        if r is None:
            return grad_jump, grad_u, {"v": grad_u * self.decay}
        return grad_jump, grad_u * r, {"v": np.where(r, grad_u * self.decay, grad_u)}

    # ------------------------------------------------------------------ compiled (Numba)
    def compiled_forward(self, jump, drive, dead, given) -> tuple:
        """All steps of :meth:`step` in one compiled loop (Numba; bit for bit the NumPy steps).

        Parameters
        ----------
        jump, drive : ndarray (T, B, N) or None
        dead : ndarray of bool (N,)
        given : ndarray of bool (T, B, N) or None

        Returns
        -------
        potential, spikes, not_refractory (or None), records (dict), counts
        """
        forward, _ = _compiled_lif()
        dtype, potential, spikes, not_refractory, counts = self._compiled_outputs(jump, drive)
        real = dtype.type  # scalars of the arrays' type: no promotion inside the loop
        refractory = self.refractory_steps > 0
        forward(_or_empty(jump, dtype), _or_empty(drive, dtype), jump is not None, drive is not None,
                real(self.decay), real(self.threshold), real(self.reset), int(self.refractory_steps),
                np.ascontiguousarray(dead, dtype=bool), _or_empty(given, bool), given is not None,
                potential, spikes, not_refractory, counts)
        return potential, spikes, not_refractory if refractory else None, {}, counts

    def _compiled_outputs(self, jump, drive) -> tuple:
        """The arrays a compiled forward loop fills, in the input's real type.

        Returns
        -------
        dtype, potential (T, B, N), spikes (T, B, N) bool, not_refractory (T, B, N) bool (an empty
        array without a refractory period), counts (B, N) int64 (zeros)
        """
        source = jump if jump is not None else drive
        shape, dtype = source.shape, real_type(source)
        refractory = self.refractory_steps > 0
        return (dtype, np.empty(shape, dtype=dtype), np.empty(shape, dtype=bool),
                np.empty(shape if refractory else (0, 0, 0), dtype=bool), np.zeros(shape[1:], dtype=np.int64))

    def compiled_backward(self, trace, surrogate, grad_spikes, grad_potential) -> tuple:
        """All steps of :meth:`backward_step` in one compiled loop: ``(dL/djump, dL/ddrive)``."""
        _, backward = _compiled_lif()
        shape, dtype = trace.potential.shape, real_type(trace.potential)
        sigma = (surrogate.derivative(trace.potential - self.threshold) if grad_spikes is not None
                 else None)
        grad_jump, grad_drive = np.empty(shape, dtype=dtype), np.empty(shape, dtype=dtype)
        has_refractory = trace.not_refractory is not None
        backward(np.ascontiguousarray(trace.spikes), _or_empty(trace.not_refractory, bool), has_refractory,
                 _or_empty(sigma, dtype), dtype.type(self.decay), _or_empty(grad_spikes, dtype),
                 grad_spikes is not None, _or_empty(grad_potential, dtype), grad_potential is not None,
                 grad_jump, grad_drive)
        return grad_jump, grad_drive


def _or_empty(array, dtype=np.float64) -> np.ndarray:
    """A C-contiguous array for a compiled loop (an empty one standing for ``None``)."""
    if array is None:
        return np.empty((0, 0, 0), dtype=dtype)
    return np.ascontiguousarray(array, dtype=dtype)


def real_type(array) -> np.dtype:
    """The floating-point type a compiled loop runs in: float32 for float32 input, else float64."""
    return np.dtype(np.float32 if np.asarray(array).dtype == np.float32 else np.float64)


@functools.lru_cache(maxsize=None)
def _compiled_lif():
    """The loops below compiled by Numba (imported here, on first use; cached on disk)."""
    import numba

    jit = numba.njit(nogil=True, cache=True)
    return jit(_lif_forward), jit(_lif_backward)


# ---------------------------------------------------------------------------------------- compiled
# The update and backward step as scalar loops over (sample, neuron, time), compiled by Numba when the
# learner's backend is "numba" and the synapses are not voltage jumps (those have the fused kernels of
# :mod:`sdsnn_bio.learning.fused`). Same operations in the same order as :meth:`LIFDynamics.step`
# (spikes and potentials bit for bit, tested); the backward loop reads the surrogate derivative
# ``sigma'(u_t - v_threshold)``, computed beforehand in NumPy.
def _lif_forward(jump, drive, has_jump, has_drive, decay, threshold, reset, refractory_steps,
                 dead, given, use_given, potential, spikes, not_refractory, counts):
    n_steps, n_samples, n_neurons = potential.shape
    v_all = np.zeros((n_samples, n_neurons), potential.dtype)
    last_all = np.full((n_samples, n_neurons), -(10**9), dtype=np.int64)
    for t in range(n_steps):  # time outermost: every array is read and written row by row
        for b in range(n_samples):
            v_row, last_row = v_all[b], last_all[b]
            for n in range(n_neurons):
                v = v_row[n]
                r = True if refractory_steps == 0 else (t - last_row[n]) >= refractory_steps
                u = v * decay
                if has_drive:
                    u = u + drive[t, b, n]
                if not r:
                    u = v
                if use_given:
                    s = given[t, b, n]
                else:
                    s = (u > threshold) and r and not dead[n]
                potential[t, b, n] = u
                spikes[t, b, n] = s
                if refractory_steps > 0:
                    not_refractory[t, b, n] = r
                if s:
                    v_row[n] = reset
                    last_row[n] = t
                    counts[b, n] += 1
                elif has_jump and r:
                    v_row[n] = u + jump[t, b, n]
                else:
                    v_row[n] = u


def _lif_backward(spikes, not_refractory, has_refractory, surrogate, decay, grad_spikes, has_grad_spikes,
                  grad_potential, has_grad_potential, grad_jump, grad_drive):
    n_steps, n_samples, n_neurons = spikes.shape
    zero, one = grad_jump.dtype.type(0.0), grad_jump.dtype.type(1.0)  # literals of the arrays' type
    grad_v_all = np.zeros((n_samples, n_neurons), grad_jump.dtype)
    for t in range(n_steps - 1, -1, -1):
        for b in range(n_samples):
            grad_v_row = grad_v_all[b]
            for n in range(n_neurons):
                r = not_refractory[t, b, n] if has_refractory else True
                through = zero if spikes[t, b, n] else grad_v_row[n]
                grad_jump[t, b, n] = through if r else zero
                grad_u = through
                if has_grad_spikes and r:
                    grad_u = grad_u + surrogate[t, b, n] * grad_spikes[t, b, n]
                if has_grad_potential:
                    grad_u = grad_u + grad_potential[t, b, n]
                grad_drive[t, b, n] = grad_u if r else zero
                grad_v_row[n] = grad_u * (decay if r else one)

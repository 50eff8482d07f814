"""Current-based synapse with exponential decay: a presynaptic spike adds ``w`` to a current.

Brian2: the postsynaptic neurons gain ``synaptic_current``, which decays with ``tau_synapse`` and
drives the membrane (the neuron model's membrane equation becomes
``dv/dt = (synaptic_current - v) / tau_membrane``); ``on_pre = "synaptic_current_post += w"``::

    dsynaptic_current/dt = -synaptic_current / tau_synapse : 1

A spike of weight ``w`` into a resting neuron raises the potential to a peak below ``w`` and
integrates to ``w * tau_synapse`` (normalised potential x time) over the membrane's response, so the
weights of a network trained with voltage jumps do not carry over unchanged. The current keeps
flowing during the refractory period and through the reset (only ``v`` is ``unless refractory``).

Discrete time (:class:`CurrentSynapseDynamics`). Brian2 integrates the linear system exactly; with
``c_t`` the current after step ``t`` (``c_{-1} = 0``) and ``J_t`` the summed weights of the
presynaptic spikes of step ``t``::

    d_t = k c_{t-1}                   (the drive of the membrane's state update at step t)
    c_t = synapse_decay c_{t-1} + J_t
    synapse_decay = exp(-dt / tau_synapse)
    k = tau_synapse / (tau_membrane - tau_synapse) * (exp(-dt / tau_membrane) - exp(-dt / tau_synapse))

so ``split(J) = (jump = None, drive = d)``. The transpose, backwards in time from ``dL/dc_{T-1} = 0``::

    dL/dJ_t = dL/dc_t,    dL/dc_{t-1} = k dL/dd_t + synapse_decay dL/dc_t

``tau_synapse`` must differ from the neurons' ``tau_membrane`` (Brian2's exact solution divides by
their difference).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from brian2 import Equations, Quantity, ms, second

from ..checks import check_time
from ..equations import shared_synapse_equations, synapse_equations

__all__ = ["ExponentialCurrentParameters", "CurrentSynapseDynamics"]


@dataclass(frozen=True)
class ExponentialCurrentParameters:
    """Current-based synapse with exponential decay, registered as ``"current_exponential"``.

    Parameters
    ----------
    tau_synapse : Quantity
        Decay time constant of the synaptic current (time, > 0, not equal to the neurons'
        ``tau_membrane``). Default 5 ms.
    """

    name: ClassVar[str] = "current_exponential"
    on_pre: ClassVar[str] = "synaptic_current_post += w"
    neuron_input: ClassVar[str] = "synaptic_current"
    sample_reset: ClassVar[str] = "synaptic_current = 0"

    tau_synapse: Quantity = field(default_factory=lambda: 5 * ms)

    def __post_init__(self) -> None:
        check_time(type(self).__name__, "tau_synapse", self.tau_synapse)

    def equations(self, shared: bool = False) -> Equations:
        """The ``Synapses`` model: weight (a jump of the current) and dendritic-spine state.

        ``shared``: a projection with shared parameters (convolution), whose weight is gathered
        from its kernel element (:func:`~sdsnn_bio.model.equations.shared_synapse_equations`).
        """
        return shared_synapse_equations() if shared else synapse_equations()

    def neuron_equations(self) -> Equations:
        """The current added to every postsynaptic neuron."""
        return Equations(
            "dsynaptic_current/dt = -synaptic_current / tau_synapse : 1"
            "  # synaptic current driving v (normalised potential)"
        )

    def namespace(self) -> dict:
        """External constants of :meth:`neuron_equations`."""
        return {"tau_synapse": self.tau_synapse}

    def check_neuron(self, neuron) -> None:
        """Refuse a neuron model whose ``tau_membrane`` equals ``tau_synapse`` (module docstring)."""
        if abs(float(neuron.tau_membrane / second) - float(self.tau_synapse / second)) < 1e-12:
            raise ValueError(
                f"ExponentialCurrentParameters.tau_synapse: expected a time different from the neurons' "
                f"tau_membrane ({neuron.tau_membrane}), got {self.tau_synapse}"
            )

    def dynamics(self, dt_seconds: float, neuron) -> "CurrentSynapseDynamics":
        """The discrete-time update on a grid of ``dt_seconds`` into neurons of model ``neuron``."""
        self.check_neuron(neuron)
        tau_m = float(neuron.tau_membrane / second)
        tau_s = float(self.tau_synapse / second)
        decay_m, decay_s = np.exp((-dt_seconds) / tau_m), np.exp((-dt_seconds) / tau_s)
        return CurrentSynapseDynamics(
            synapse_decay=float(decay_s), coupling=float(tau_s / (tau_m - tau_s) * (decay_m - decay_s)),
        )


@dataclass(frozen=True)
class CurrentSynapseDynamics:
    """``split`` and its transpose (module docstring).

    Parameters
    ----------
    synapse_decay : float
        ``exp(-dt / tau_synapse)``.
    coupling : float
        ``k``: drive of the membrane per unit of current over one step.
    """

    synapse_decay: float
    coupling: float

    def split(self, currents):
        """``(None, drive)`` of the summed presynaptic weights ``currents`` (T, B, N), in their type."""
        drive = np.empty_like(currents)
        current = np.zeros(currents.shape[1:], dtype=currents.dtype)
        for t in range(currents.shape[0]):
            np.multiply(current, self.coupling, out=drive[t])
            current = current * self.synapse_decay + currents[t]
        return None, drive

    def split_backward(self, grad_jump, grad_drive):
        """``dL/dJ`` from ``dL/ddrive`` (T, B, N), in their type."""
        grad = np.empty_like(grad_drive)
        grad_current = np.zeros(grad_drive.shape[1:], dtype=grad_drive.dtype)
        for t in range(grad_drive.shape[0] - 1, -1, -1):
            grad[t] = grad_current
            grad_current = grad_drive[t] * self.coupling + grad_current * self.synapse_decay
        return grad

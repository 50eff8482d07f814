"""Voltage-jump synapse: a presynaptic spike adds ``w`` to the postsynaptic potential at once.

Brian2: ``Synapses`` with :func:`~sdsnn_bio.model.equations.synapse_equations` and
``on_pre = "v_post += w"``; nothing is added to the neurons. Synaptic propagation runs after the
threshold, so the jump of step ``t`` is seen by the threshold at step ``t + 1``; it is lost if the
neuron spikes at step ``t`` (the reset follows) or is refractory (``v`` is ``unless refractory``).

Discrete time (:class:`VoltageJumpDynamics`): with ``J_t`` the summed weights of the presynaptic
spikes of step ``t``, ``split(J) = (jump = J, drive = None)``; its transpose is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..equations import ON_PRE, shared_synapse_equations, synapse_equations

__all__ = ["VoltageJumpParameters", "VoltageJumpDynamics"]


@dataclass(frozen=True)
class VoltageJumpParameters:
    """Voltage-jump synapse (no constants), registered as ``"voltage_jump"``."""

    name: ClassVar[str] = "voltage_jump"
    on_pre: ClassVar[str] = ON_PRE
    neuron_input: ClassVar[str] = ""
    sample_reset: ClassVar[str] = ""

    def equations(self, shared: bool = False):
        """The ``Synapses`` model: weight and dendritic-spine state.

        ``shared``: a projection with shared parameters (convolution), whose weight is gathered
        from its kernel element (:func:`~sdsnn_bio.model.equations.shared_synapse_equations`).
        """
        return shared_synapse_equations() if shared else synapse_equations()

    def neuron_equations(self):
        """Nothing is added to the postsynaptic neurons."""
        return None

    def namespace(self) -> dict:
        """No external constants."""
        return {}

    def dynamics(self, dt_seconds: float, neuron) -> "VoltageJumpDynamics":
        """The discrete-time update (no constants)."""
        return VoltageJumpDynamics()


@dataclass(frozen=True)
class VoltageJumpDynamics:
    """``split(J) = (J, None)`` and its transpose."""

    def split(self, currents):
        """``(jump, drive)`` of the summed presynaptic weights ``currents`` (T, B, N)."""
        return currents, None

    def split_backward(self, grad_jump, grad_drive):
        """``dL/dJ`` from ``dL/djump``."""
        return grad_jump

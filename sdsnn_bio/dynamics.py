"""Discrete-time constants of the neuron layers: the seam between the Brian2 model and the kernels.

The Brian2 network (:mod:`sdsnn_bio.model`) derives them from its equations and parameters
(:meth:`sdsnn_bio.model.NetworkParameters.layer_dynamics`, as Brian2 discretises them); the
training kernels (:mod:`sdsnn_bio.learning`) integrate the layers with them. Like
:mod:`sdsnn_bio.structure`, this module holds plain records and imports neither Brian2 nor the
subpackages, so the model does not depend on the learner nor the learner on Brian2.

The default model (LIF neurons, voltage-jump synapses) is a :class:`LayerDynamics`; any other
registered neuron or synapse model (:mod:`sdsnn_bio.model.neurons`, :mod:`sdsnn_bio.model.synapses`)
is a :class:`ModelDynamics`, which pairs the two models' own discrete-time records (their ``step``,
``backward_step`` and ``split`` run by :mod:`sdsnn_bio.learning.stepping`). The LIF neuron's record
(:class:`~sdsnn_bio.model.neurons.LIFDynamics`) is this record with the model's steps added, and
ALIF's extends it: the learner picks its fast LIF loops for a layer whose record is exactly a
:class:`LayerDynamics`, never for a record built on it.

For a LIF layer with time step ``dt``::

    decay            = exp((-dt) / tau_membrane)
    refractory_steps = int((refractory + 1e-3 dt) / dt)        (brian2.core.functions.timestep)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LayerDynamics", "ModelDynamics"]


@dataclass(frozen=True)
class LayerDynamics:
    """Discrete-time constants of a LIF layer (plain floats: no Brian2).

    Parameters
    ----------
    decay : float
        ``exp(-dt / tau_membrane)``, computed exactly as Brian2 does (``exp((-dt)/tau)``).
    threshold, reset : float
        Normalised threshold and reset potentials.
    refractory_steps : int
        Refractory period in time steps (0: none).
    """

    decay: float
    threshold: float = 1.0
    reset: float = 0.0
    refractory_steps: int = 0

    def __post_init__(self) -> None:
        owner = type(self).__name__  # also for the neuron models' records built on this one
        if not 0.0 <= self.decay <= 1.0:
            raise ValueError(f"{owner}.decay: expected a value in [0, 1], got {self.decay!r}")
        if self.reset >= self.threshold:
            raise ValueError(
                f"{owner}.reset: expected a value below threshold={self.threshold}, got {self.reset}"
            )
        if int(self.refractory_steps) != self.refractory_steps or self.refractory_steps < 0:
            raise ValueError(
                f"{owner}.refractory_steps: expected an integer >= 0, got {self.refractory_steps!r}"
            )


@dataclass(frozen=True)
class ModelDynamics:
    """Discrete-time update of one layer of any registered model: a neuron and a synapse record.

    Parameters
    ----------
    neuron
        ``dynamics(dt)`` of a neuron model (e.g. :class:`~sdsnn_bio.model.neurons.ALIFDynamics`):
        plain floats with ``initial_state``, ``step``, ``initial_adjoint`` and ``backward_step``.
    synapse
        ``dynamics(dt, neuron)`` of a synapse model (e.g.
        :class:`~sdsnn_bio.model.synapses.CurrentSynapseDynamics`): ``split`` and ``split_backward``.
    """

    neuron: object
    synapse: object

    @property
    def threshold(self) -> float:
        """The neuron model's threshold (normalised potential)."""
        return self.neuron.threshold

    @property
    def refractory_steps(self) -> int:
        """The neuron model's refractory period in time steps."""
        return self.neuron.refractory_steps

    @property
    def compilable(self) -> bool:
        """Whether the neuron model has compiled loops (``compiled_forward``, ``compiled_backward``)."""
        return hasattr(self.neuron, "compiled_forward") and hasattr(self.neuron, "compiled_backward")

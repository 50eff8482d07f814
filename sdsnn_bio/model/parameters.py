"""Parameters of the spiking network, as frozen dataclasses holding Brian2 quantities.

Membrane potentials are *normalised*: ``v = (V - E_rest) / (V_threshold - E_rest)``, so the resting
potential is 0 and, by default, the firing threshold is 1. Synaptic weights are in the same unit: a
weight of 1 takes a resting neuron to threshold. Times carry Brian2 units and are checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from brian2 import Quantity, ms, second

from ..dynamics import LayerDynamics, ModelDynamics
from .checks import check_number as _check_number
from .checks import check_time
from .neurons import NeuronParameters
from .synapses import VoltageJumpParameters

__all__ = ["NetworkParameters"]


@dataclass(frozen=True)
class NetworkParameters:
    """Feed-forward architecture and simulation time grid.

    Parameters
    ----------
    n_input : int
        Input channels (N-MNIST: 34 x 34 x 2 = 2312).
    hidden_sizes : tuple of int
        Sizes of the hidden LIF layers (N-MNIST default: one layer of 800).
    n_output : int
        Output neurons (one per class).
    dt : Quantity
        Simulation time step, also the width of the input time bins.
    n_steps : int
        Time steps per sample (the presentation window is ``n_steps * dt``).
    hidden, output : NeuronParameters
        Neuron models of the hidden and output layers: any model of
        :data:`sdsnn_bio.model.neurons.NEURON_MODELS` (LIF by default; e.g.
        ``neuron_model("alif", tau_adaptation=100*ms)``).
    synapse : VoltageJumpParameters or ExponentialCurrentParameters
        Synapse model of every projection, one of :data:`sdsnn_bio.model.synapses.SYNAPSE_MODELS`
        (voltage jumps by default; e.g. ``synapse_model("current_exponential", tau_synapse=5*ms)``).
    weight_init_gain : float
        Initial weights are drawn from N(0, (gain / sqrt(fan_in))^2).
    layers : tuple of str
        Optional layer description of a convolutional network, e.g. ``("15C3", "AP2", "40C3",
        "AP2", "300FC")`` (:mod:`sdsnn_bio.model.architecture`); empty (default): fully-connected
        layers of ``hidden_sizes``. With layers, ``hidden_sizes`` must be the neurons of each LIF
        layer: build with :meth:`from_layers`, which computes them.
    input_shape : tuple of int or None
        ``(channels, height, width)`` of the input, required with ``layers`` (``n_input`` is its
        product).
    direct_input : bool
        False (default): the input is spikes (a ``SpikeGeneratorGroup``). True: direct encoding,
        the input is an analog intensity per channel presented at every step (a ``NeuronGroup``
        holding ``x``; :class:`~sdsnn_bio.model.SpikingNetwork`, :mod:`sdsnn_bio.data.analog`).
    """

    n_input: int = 2312
    hidden_sizes: tuple[int, ...] = (800,)
    n_output: int = 10
    dt: Quantity = field(default_factory=lambda: 1 * ms)
    n_steps: int = 300
    hidden: NeuronParameters = field(default_factory=NeuronParameters)
    output: NeuronParameters = field(default_factory=NeuronParameters)
    weight_init_gain: float = 4.0
    layers: tuple = ()
    input_shape: tuple | None = None
    synapse: VoltageJumpParameters = field(default_factory=VoltageJumpParameters)
    direct_input: bool = False

    @classmethod
    def from_layers(cls, layers, input_shape, n_output: int = 10, **kwargs) -> "NetworkParameters":
        """Parameters of a network described by ``layers`` (sizes computed from the shapes).

        Parameters
        ----------
        layers : sequence of str
            Hidden layers, e.g. ``["15C3", "AP2", "40C3", "AP2", "300FC"]``.
        input_shape : tuple of int
            ``(channels, height, width)`` of the input.
        n_output : int
        **kwargs
            The other fields (``dt``, ``n_steps``, ``hidden``, ...).
        """
        from .architecture import parse_layers

        architecture = parse_layers(layers, input_shape, n_output)
        return cls(n_input=architecture.n_input, hidden_sizes=architecture.hidden_sizes,
                   n_output=n_output, layers=tuple(layers), input_shape=tuple(input_shape), **kwargs)

    def architecture(self):
        """The parsed :class:`~sdsnn_bio.model.architecture.Architecture` (None without layers)."""
        if not self.layers:
            return None
        from .architecture import parse_layers

        return parse_layers(self.layers, self.input_shape, self.n_output)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(self.input_shape))
        for name in ("hidden", "output"):
            if not isinstance(getattr(self, name), NeuronParameters):
                raise ValueError(
                    f"NetworkParameters.{name}: expected a neuron model (see "
                    f"sdsnn_bio.model.neurons.NEURON_MODELS), got {getattr(self, name)!r}"
                )
        if not hasattr(self.synapse, "dynamics") or not hasattr(self.synapse, "on_pre"):
            raise ValueError(
                "NetworkParameters.synapse: expected a synapse model (see "
                f"sdsnn_bio.model.synapses.SYNAPSE_MODELS), got {self.synapse!r}"
            )
        if not isinstance(self.direct_input, bool):
            raise ValueError(f"NetworkParameters.direct_input: expected True or False, got {self.direct_input!r}")
        check = getattr(self.synapse, "check_neuron", None)
        if check is not None:
            check(self.hidden)
            check(self.output)
        for name in ("n_input", "n_output", "n_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"NetworkParameters.{name}: expected an integer >= 1, got {value!r}")
        if not self.hidden_sizes:
            raise ValueError("NetworkParameters.hidden_sizes: expected at least one hidden layer, got ()")
        for size in self.hidden_sizes:
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(
                    f"NetworkParameters.hidden_sizes: expected integers >= 1, got {self.hidden_sizes!r}"
                )
        check_time("NetworkParameters", "dt", self.dt)
        _check_number("NetworkParameters", "weight_init_gain", self.weight_init_gain, low=0.0)
        if self.layers:
            architecture = self.architecture()
            if architecture.n_input != self.n_input or architecture.hidden_sizes != self.hidden_sizes:
                raise ValueError(
                    f"NetworkParameters: layers {list(self.layers)} on an input of shape "
                    f"{self.input_shape} give n_input={architecture.n_input} and hidden_sizes="
                    f"{architecture.hidden_sizes}, got n_input={self.n_input} and hidden_sizes="
                    f"{self.hidden_sizes} (build with NetworkParameters.from_layers)"
                )

    # ------------------------------------------------------------------ derived names
    @property
    def population_names(self) -> tuple[str, ...]:
        """``("input", "hidden_1", ..., "output")``."""
        hidden = tuple(f"hidden_{k + 1}" for k in range(len(self.hidden_sizes)))
        return ("input",) + hidden + ("output",)

    @property
    def population_sizes(self) -> tuple[int, ...]:
        """Neurons per population, input to output."""
        return (self.n_input,) + self.hidden_sizes + (self.n_output,)

    @property
    def projection_names(self) -> tuple[str, ...]:
        """Names ``<source>_to_<target>`` of the projections, input to output."""
        names = self.population_names
        return tuple(f"{a}_to_{b}" for a, b in zip(names[:-1], names[1:]))

    def neuron_parameters(self, population: str) -> NeuronParameters:
        """The neuron constants of ``population`` (hidden or output)."""
        if population == "output":
            return self.output
        if population.startswith("hidden_"):
            return self.hidden
        raise KeyError(f"population {population!r} has no neuron model (the input is a spike source)")

    @property
    def window(self) -> Quantity:
        """Presentation window of one sample, ``n_steps * dt``."""
        return self.n_steps * self.dt

    @property
    def dt_seconds(self) -> float:
        """The time step in seconds, as a float."""
        return float(self.dt / second)

    @property
    def neuron_models(self) -> tuple[str, str]:
        """Registered names of the hidden and output neuron models (``("lif", "lif")`` by default)."""
        return self.hidden.name, self.output.name

    def layer_dynamics(self) -> dict:
        """Discrete-time update of each neuron layer for the learner (plain floats, no Brian2).

        The default model (LIF neurons, voltage-jump synapses) gives a
        :class:`~sdsnn_bio.dynamics.LayerDynamics` (the learner's fast NumPy and Numba
        loops); any other model gives a :class:`~sdsnn_bio.dynamics.ModelDynamics` whose neuron and
        synapse records run their own ``step`` and ``backward_step``. Decays ``exp((-dt)/tau)`` and the
        refractory period in steps are computed as Brian2 computes them
        (``brian2.core.functions.timestep``), so that the kernel reproduces the Brian2 network spike
        for spike.
        """
        dt = self.dt_seconds
        dynamics = {}
        for name in self.population_names[1:]:
            neuron = self.neuron_parameters(name)
            discrete = neuron.dynamics(dt)
            if neuron.name == "lif" and self.synapse.name == "voltage_jump":
                dynamics[name] = LayerDynamics(
                    decay=discrete.decay, threshold=discrete.threshold, reset=discrete.reset,
                    refractory_steps=discrete.refractory_steps,
                )
            else:
                dynamics[name] = ModelDynamics(discrete, self.synapse.dynamics(dt, neuron))
        return dynamics

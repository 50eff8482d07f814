"""The spiking network model: parameters, equations, neuron and synapse models, structure, network.

The initial structure and the Brian2 network of record; the neuron and synapse models are chosen by
name from :mod:`.neurons` and :mod:`.synapses`.
"""

from .equations import ON_PRE, RESET, THRESHOLD, lif_equations, synapse_equations
from .initial import initial_structure
from .network import Recording, SpikingNetwork, configure_brian2
from .neurons import ALIF, LIF, NEURON_MODELS, AdaptiveNeuronParameters, NeuronParameters, neuron_model
from .parameters import NetworkParameters
from .standalone import present_standalone
from .synapses import (
    SYNAPSE_MODELS,
    ExponentialCurrentParameters,
    VoltageJumpParameters,
    synapse_model,
)

__all__ = [
    "ON_PRE",
    "RESET",
    "THRESHOLD",
    "NetworkParameters",
    "NeuronParameters",
    "AdaptiveNeuronParameters",
    "LIF",
    "ALIF",
    "NEURON_MODELS",
    "neuron_model",
    "SYNAPSE_MODELS",
    "VoltageJumpParameters",
    "ExponentialCurrentParameters",
    "synapse_model",
    "Recording",
    "SpikingNetwork",
    "configure_brian2",
    "initial_structure",
    "lif_equations",
    "present_standalone",
    "synapse_equations",
]

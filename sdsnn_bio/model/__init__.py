"""The spiking network model: parameters, equations, initial structure and the Brian2 network."""

from .equations import ON_PRE, RESET, THRESHOLD, lif_equations, synapse_equations
from .initial import initial_structure
from .network import Recording, SpikingNetwork, configure_brian2
from .parameters import NetworkParameters, NeuronParameters

__all__ = [
    "ON_PRE",
    "RESET",
    "THRESHOLD",
    "NetworkParameters",
    "NeuronParameters",
    "Recording",
    "SpikingNetwork",
    "configure_brian2",
    "initial_structure",
    "lif_equations",
    "synapse_equations",
]

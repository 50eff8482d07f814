"""sdsnn_bio: developmental structural plasticity in Brian2 spiking networks.

A reference implementation of SD-SNN (Han, Zhao, Zeng & Pan, "Adaptive Sparse Structure Development
with Pruning and Regeneration for Spiking Neural Networks", arXiv 2211.12219): dendritic-spine-based
synaptic constraint, neuron pruning with a neurotrophic rate and synaptic regeneration, applied to
Brian2 networks between simulation runs. Importing the package runs nothing; see
:mod:`sdsnn_bio.experiment` (experiments), :mod:`sdsnn_bio.model` (the Brian2 network),
:mod:`sdsnn_bio.learning` (surrogate-gradient learning) and :mod:`sdsnn_bio.development` (the rules).
"""

__version__ = "0.1.0"

"""sdsnn_bio: developmental structural plasticity in Brian2 spiking networks.

A reference implementation of SD-SNN (Han, Zhao, Zeng & Pan, "Adaptive Sparse Structure Development
with Pruning and Regeneration for Spiking Neural Networks", arXiv 2211.12219): dendritic-spine-based
synaptic constraint, neuron pruning with a neurotrophic rate and synaptic regeneration, applied to
Brian2 networks between simulation runs.

The entry points are re-exported here and imported on first use, so ``import sdsnn_bio`` runs
nothing and costs about a millisecond (Brian2 is imported only when a name that needs it is used)::

    import sdsnn_bio

    config = sdsnn_bio.load_config("examples/configs/embedded.toml")
    results = sdsnn_bio.run_experiment(config, output_dir="runs/embedded")
    sdsnn_bio.plot_results("runs/embedded", "figures/embedded")

Subpackages: :mod:`sdsnn_bio.model` (the Brian2 network and its equations),
:mod:`sdsnn_bio.learning` (surrogate-gradient learning), :mod:`sdsnn_bio.development` (the SD-SNN
rules and the structural scheduler), :mod:`sdsnn_bio.data` (N-MNIST readers and the embedded
dataset); modules :mod:`sdsnn_bio.config`, :mod:`sdsnn_bio.experiment`, :mod:`sdsnn_bio.plotting`,
:mod:`sdsnn_bio.structure`.
"""

from ._lazy import lazy_exports

__version__ = "0.1.0"

#: Public name -> submodule defining it (imported on first access).
_EXPORTS = {
    # configuration and experiments
    "load_config": ".config",
    "ExperimentConfig": ".config",
    "ConfigError": ".config",
    "run_experiment": ".experiment",
    # figures
    "plot_results": ".plotting",
    "plot_seed_results": ".plotting",
    "load_results": ".plotting",
    # the network, its structure and its development
    "SpikingNetwork": ".model",
    "NetworkParameters": ".model",
    "initial_structure": ".model",
    "Structure": ".structure",
    "StructuralScheduler": ".development",
    "Schedule": ".development",
    "DevelopmentParameters": ".development",
    "DevelopmentMonitor": ".development",
    # learning
    "Learner": ".learning",
    "LearningParameters": ".learning",
    # data
    "load_dataset": ".data",
    "load_embedded": ".data",
    "events_to_spikes": ".data",
}

__all__ = ["__version__", *_EXPORTS]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

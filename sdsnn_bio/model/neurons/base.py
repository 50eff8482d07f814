"""What every neuron model shares: the SD-SNN development state of a neuron and the time grid.

A neuron model (see :mod:`sdsnn_bio.model.neurons` for the checklist) adds its own state variables
to :data:`DEVELOPMENT_STATE`, the per-neuron state of SD-SNN section 2 that the structural scheduler
writes between runs; the threshold of every model ends with ``and alive`` so that pruned neurons
never fire.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEVELOPMENT_STATE", "refractory_steps"]

#: Per-neuron state of SD-SNN section 2, appended to every neuron model's equations.
DEVELOPMENT_STATE = """
        alive : boolean  # False once the neuron has been pruned: it never fires again
        importance : 1  # summed normalised spine width of the incoming synapses
        pruning_rate : 1 (shared)  # p_l: fraction of this layer that development prunes
        trophic_pressure : 1 (shared)  # neurons alive here / neurons alive in the target layer
        """


def refractory_steps(refractory_seconds: float, dt_seconds: float) -> int:
    """A refractory period in time steps, rounded as Brian2 rounds it (``brian2.core.functions.timestep``).

    Parameters
    ----------
    refractory_seconds, dt_seconds : float
        Refractory period and time step (s).
    """
    return int(np.int64((refractory_seconds + 1e-3 * dt_seconds) / dt_seconds))

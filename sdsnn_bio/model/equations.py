"""Model equations of the SD-SNN network, as printable Brian2 ``Equations``.

The neuron and synapse models in force are chosen by name (``network.neuron_model``,
``network.synapse_model``) and live one file each in :mod:`sdsnn_bio.model.neurons` and
:mod:`sdsnn_bio.model.synapses`; this module holds what every synapse model shares (the weight and the
dendritic-spine state) and re-exports the default LIF neuron's equations. The default model:

Neurons (leaky integrate-and-fire, normalised potential; SD-SNN section "Spiking neuron model")::

    dv/dt = -v / tau_membrane                          (unless refractory)
    spike when v > v_threshold and the neuron is alive; then v <- v_reset

Synapses are current pulses: a presynaptic spike adds ``w`` to ``v_post``. Each synapse also carries
the dendritic-spine state of SD-SNN section 1 (the range ``[spine_range_lower, spine_range_upper]``
and the streak counters of enlargement, shrinkage and regrowth). These variables change only between
simulation runs, when the structural-plasticity scheduler applies the development rules; they live
on the Brian2 objects so that users can inspect and monitor them like any synaptic variable.

Each neuron carries the state of section 2: ``alive`` (pruned neurons never spike), its
``importance`` (summed normalised spine width of its incoming synapses) and, shared by the layer,
the pruning rate ``pruning_rate`` driven by neurotrophic competition (``trophic_pressure``).
"""

from __future__ import annotations

from brian2 import Equations

from .neurons.lif import RESET, SAMPLE_RESET, THRESHOLD, lif_equations

__all__ = [
    "lif_equations",
    "synapse_equations",
    "shared_synapse_equations",
    "ON_PRE",
    "THRESHOLD",
    "RESET",
    "SAMPLE_RESET",
    "SPINE_VARIABLES",
]

#: Synaptic transmission: an instantaneous jump of the postsynaptic potential.
ON_PRE = "v_post += w"

#: Synaptic variables holding the spine state, in the order of ``structure.SPINE_FIELDS``.
SPINE_VARIABLES = {
    "lower": "spine_range_lower",
    "upper": "spine_range_upper",
    "upper_streak": "upper_streak",
    "upper_excess": "upper_excess",
    "lower_streak": "lower_streak",
    "lower_excess": "lower_excess",
    "shrink_streak": "shrink_streak",
    "previous_abs_weight": "previous_abs_weight",
    "regrowth_streak": "regrowth_streak",
}


def synapse_equations() -> Equations:
    """Current-pulse synapse carrying the dendritic-spine state of SD-SNN section 1."""
    return Equations(
        """
        w : 1  # synaptic weight: jump of the normalised postsynaptic potential per spike
        spine_range_lower : 1  # r_lower: lower edge of the spine's capacity
        spine_range_upper : 1  # r_upper: upper edge of the spine's capacity
        upper_streak : integer  # consecutive development steps with w >= r_upper
        upper_excess : 1  # summed w - r_upper over that streak
        lower_streak : integer  # consecutive development steps with w <= r_lower
        lower_excess : 1  # summed r_lower - w over that streak (positive)
        shrink_streak : integer  # consecutive development steps with |w| decreasing
        previous_abs_weight : 1  # |w| at the previous development step
        regrowth_streak : integer  # steps a pruned synapse's latent weight beat the regrowth percentile
        """
    )


def shared_synapse_equations() -> Equations:
    """Synapse of a projection with shared parameters (convolution, pooling folded in).

    The weight is gathered from the kernel element the synapse shares with others
    (``w = pooling_factor * kernel_weight[kernel_index]``). The spine state of SD-SNN section 1 is
    a property of the kernel element, not of each of its synapses: it lives once per element in the
    structure record (:class:`~sdsnn_bio.structure.Projection`), not on the millions of synapses of
    a convolution.
    """
    return Equations(
        """
        w : 1  # synaptic weight: pooling_factor * the shared kernel element's weight
        kernel_index : integer (constant)  # flat index of the shared kernel element (row * columns + column)
        pooling_factor : 1 (constant, shared)  # 1 / pool**2: average pooling of the presynaptic spikes, folded in
        """
    )

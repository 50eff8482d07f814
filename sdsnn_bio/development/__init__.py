"""SD-SNN structural development (Han, Zhao, Zeng & Pan, arXiv 2211.12219, sections 1-3).

Section 1, dendritic-spine plasticity and synaptic constraint, per synapse with range [r_lo, r_up]::

    w >= r_up at K consecutive steps          ->  r_up += mean excess (w - r_up) over the streak
    w <= r_lo at K consecutive steps          ->  r_lo -= mean excess (r_lo - w) over the streak
    |w| decreasing at K consecutive steps     ->  r_up *= 0.75, r_lo *= 0.75
    after the warm-up                         ->  w <- clip(w, r_lo, r_up)

Section 2, neuron pruning with a neurotrophic rate::

    importance_j = sum_i unit(r_up + |r_lo|)_ij   over existing incoming synapses
    prune the least important neurons until the pruned fraction reaches p_l
    p_l += a(s - s0) * alive_l / alive_{l+1}       (a decays exponentially)

Section 3, synaptic regeneration::

    q = min(60 + 1.1 ** (s - s0), 99); an absent synapse whose latent weight exceeds the q-th
    percentile of its projection's weights at more than N consecutive steps regrows.

:mod:`.rules` holds the pure NumPy rules, :mod:`.schedule` decides when they run,
:mod:`.conditions` prunes/regrows with Brian2-style string conditions, :mod:`.scheduler`
applies all of it to a Brian2 network between runs and :mod:`.monitor` records chosen variables
at every development step.
"""

from .conditions import ConditionError, ConditionResult, evaluate_condition, evaluate_mask, prune, regrow
from .monitor import MONITORS_FILE, DevelopmentMonitor, load_monitors, save_monitors
from .rules import (
    DevelopmentParameters,
    DevelopmentRecord,
    DevelopmentState,
    SpineUpdate,
    adapt_pruning_rate,
    constrain_weights,
    develop_structure,
    neuron_importance,
    neurons_to_prune,
    normalised_spine_width,
    regeneration_percentile,
    regeneration_threshold,
    regrowth_step,
    trophic_factor,
    update_spines,
)
from .schedule import DevelopmentActions, Schedule
from .scheduler import TRACKED_SYNAPSES, DevelopingNetwork, StructuralScheduler, StructureLearner

__all__ = [
    "ConditionError",
    "ConditionResult",
    "MONITORS_FILE",
    "DevelopingNetwork",
    "DevelopmentActions",
    "DevelopmentMonitor",
    "DevelopmentParameters",
    "DevelopmentRecord",
    "DevelopmentState",
    "Schedule",
    "SpineUpdate",
    "StructuralScheduler",
    "StructureLearner",
    "TRACKED_SYNAPSES",
    "adapt_pruning_rate",
    "constrain_weights",
    "develop_structure",
    "evaluate_condition",
    "evaluate_mask",
    "load_monitors",
    "neuron_importance",
    "neurons_to_prune",
    "normalised_spine_width",
    "prune",
    "regeneration_percentile",
    "regeneration_threshold",
    "regrow",
    "regrowth_step",
    "save_monitors",
    "trophic_factor",
    "update_spines",
]

"""Development monitors: what they select, what they record, their memory, files and figures."""

from __future__ import annotations

import numpy as np
import pytest

from sdsnn_bio.development import DevelopmentParameters, Schedule, StructuralScheduler
from sdsnn_bio.development.conditions import ConditionError
from sdsnn_bio.development.monitor import (
    DevelopmentMonitor,
    load_monitors,
    save_monitors,
)
from sdsnn_bio.model import NetworkParameters, SpikingNetwork, initial_structure

PARAMS = NetworkParameters(n_input=20, hidden_sizes=(12,), n_output=4, n_steps=10, weight_init_gain=8.0)
NOW = dict(steps_per_epoch=1, constraint_warmup_steps=0, pruning_warmup_steps=0)


def develop(monitors, steps: int = 4, seed: int = 3, pruning_rate: float = 0.25):
    """A small network developed ``steps`` times with random weight changes between steps.

    Returns the scheduler and, per step, a copy of the structure after it (the reference).
    """
    rng = np.random.default_rng(seed)
    structure = initial_structure(PARAMS, rng)
    network = SpikingNetwork(structure, PARAMS)
    scheduler = StructuralScheduler(network, structure, Schedule(**NOW),
                                    DevelopmentParameters(initial_pruning_rate=pruning_rate,
                                                          consecutive_steps=2),
                                    sync="lazy", monitors=monitors)
    snapshots = []
    for _ in range(steps):
        for projection in structure.projections:  # stands in for the learner
            projection.weight += rng.normal(0.0, 0.3, projection.shape)
        scheduler.step()
        snapshots.append((structure.copy(), dict(scheduler.state.pruning_rates)))
    return scheduler, snapshots


def test_the_condition_selects_the_synapses_once_and_values_equal_the_structure():
    monitor = DevelopmentMonitor("input_to_hidden_1", ["w", "spine_range_upper", "lower", "exists",
                                                       "upper_streak", "spine_width", "alive_post"],
                                 "i < 3 and j >= 10")
    scheduler, snapshots = develop([monitor])
    assert sorted(zip(monitor.i.tolist(), monitor.j.tolist())) == [(i, j) for i in range(3) for j in (10, 11)]
    assert monitor.steps.tolist() == [1, 2, 3, 4], "one recording per development step, numbered like the log"
    assert monitor.w.shape == (6, 4), "(recorded synapses, steps), like a Brian2 StateMonitor"
    for k, (structure, _) in enumerate(snapshots):
        projection = structure.projection("input_to_hidden_1")
        pairs = (monitor.i, monitor.j)
        assert np.array_equal(monitor.w[:, k], projection.weight[pairs]), "w is the (latent) weight, exactly"
        assert np.array_equal(monitor.spine_range_upper[:, k], projection.spine.upper[pairs])
        assert np.array_equal(monitor.values("spine_range_lower")[:, k], projection.spine.lower[pairs])
        assert np.array_equal(monitor.exists[:, k], projection.exists[pairs])
        assert np.array_equal(monitor.upper_streak[:, k], projection.spine.upper_streak[pairs])
        assert np.array_equal(monitor.spine_width[:, k], projection.spine.width[pairs])
        assert np.array_equal(monitor.alive_post[:, k], structure.population("hidden_1").alive[monitor.j])
    assert monitor.upper_streak.dtype == np.int32 and monitor.exists.dtype == bool


def test_a_condition_on_the_variables_is_evaluated_when_the_monitor_is_attached():
    rng = np.random.default_rng(0)
    structure = initial_structure(PARAMS, rng)
    monitor = DevelopmentMonitor("hidden_1_to_output", "w", "w > 0.5")
    monitor.attach(structure)
    weight = structure.projection("hidden_1_to_output").weight
    expected = np.argwhere(weight > 0.5)
    assert monitor.n_recorded == len(expected) > 0
    assert np.array_equal(np.stack([monitor.i, monitor.j], axis=1), expected)
    assert monitor.labels[0] == f"hidden_1[{expected[0][0]}] → output[{expected[0][1]}]"


def test_neuron_variables_of_a_population():
    monitor = DevelopmentMonitor("hidden_1", ["alive", "importance", "pruning_rate"], "i % 2 == 0")
    _, snapshots = develop([monitor], pruning_rate=0.4)
    from sdsnn_bio.development.rules import neuron_importance

    assert monitor.i.tolist() == list(range(0, 12, 2)) and monitor.j is None
    for k, (structure, rates) in enumerate(snapshots):
        incoming = structure.projection("input_to_hidden_1")
        assert np.array_equal(monitor.alive[:, k], structure.population("hidden_1").alive[monitor.i])
        assert np.array_equal(monitor.importance[:, k],
                              neuron_importance(incoming.spine, incoming.exists)[monitor.i])
        assert np.all(monitor.pruning_rate[:, k] == rates["hidden_1"])
    assert not monitor.alive.all(), "pruning happened and the monitor saw it"


def test_memory_per_synapse_and_step_is_the_sum_of_the_itemsizes():
    monitor = DevelopmentMonitor("input_to_hidden_1", ["w", "exists", "upper_streak"], "j == 0")
    develop([monitor], steps=3)
    assert monitor.n_recorded == 20
    assert monitor.bytes_per_step == 20 * (8 + 1 + 4) + 8
    assert monitor.nbytes == 3 * monitor.bytes_per_step
    stored = sum(monitor.values(v).nbytes for v in monitor.variables) + monitor.steps.nbytes
    assert monitor.nbytes == stored, "the stated memory is what the recordings hold"


def test_saved_monitors_read_back_equal_and_keep_recording(tmp_path):
    synapses = DevelopmentMonitor("input_to_hidden_1", ["w", "upper"], "i == j", name="diagonal")
    neurons = DevelopmentMonitor("output", "alive")
    develop([synapses, neurons], steps=2)
    path = save_monitors(tmp_path / "monitors.npz", [synapses, neurons])
    loaded = load_monitors(path)
    assert set(loaded) == {"diagonal", "output_monitor"}
    again = loaded["diagonal"]
    assert again.source == "input_to_hidden_1" and again.condition == "i == j"
    assert np.array_equal(again.i, synapses.i) and np.array_equal(again.j, synapses.j)
    assert np.array_equal(again.steps, synapses.steps)
    for variable in ("w", "spine_range_upper"):
        assert np.array_equal(again.values(variable), synapses.values(variable))
    assert np.array_equal(loaded["output_monitor"].alive, neurons.alive)
    structure = initial_structure(PARAMS, np.random.default_rng(1))
    again.record(3, structure)  # a resumed run appends to what was loaded
    assert again.w.shape == (again.n_recorded, 3)


def test_bad_definitions_fail_with_a_message_naming_what_was_expected():
    with pytest.raises(ValueError, match=r"unknown variables \['spine_upper'\]; synaptic variables:"):
        DevelopmentMonitor("input_to_hidden_1", ["spine_upper"])
    structure = initial_structure(PARAMS, np.random.default_rng(0))
    with pytest.raises(KeyError, match="no projection or population named 'hidden_9'"):
        DevelopmentMonitor("hidden_9", "alive").attach(structure)
    with pytest.raises(ValueError, match=r"\['w'\] cannot be recorded on the population 'hidden_1'"):
        DevelopmentMonitor("hidden_1", "w").attach(structure)
    with pytest.raises(ConditionError, match="DevelopmentMonitor 'm'.*unknown variable 'weight'"):
        DevelopmentMonitor("input_to_hidden_1", "w", "weight > 0", name="m").attach(structure)
    with pytest.raises(ConditionError, match="Attribute .* is not allowed"):
        DevelopmentMonitor("input_to_hidden_1", "w", "w.__class__ == 0").attach(structure)
    with pytest.raises(ConditionError, match="Call|only the functions"):
        DevelopmentMonitor("input_to_hidden_1", "w", "__import__('os').system('true') == 0").attach(structure)
    with pytest.raises(ValueError, match=r"names must be unique, \['twice'\]"):
        develop([DevelopmentMonitor("hidden_1", "alive", name="twice"),
                 DevelopmentMonitor("output", "alive", name="twice")], steps=1)
    with pytest.raises(KeyError, match="does not record 'importance'"):
        DevelopmentMonitor("hidden_1", "alive").values("importance")
    with pytest.raises(FileNotFoundError, match="monitors file .* does not exist"):
        load_monitors("/nonexistent/monitors.npz")

"""The structural scheduler on live Brian2 networks (numpy target, tiny 20-12-8-4 networks)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from brian2 import Synapses

from sdsnn_bio.development import DevelopmentParameters, Schedule, StructuralScheduler
from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.model import NetworkParameters, SpikingNetwork, initial_structure

PARAMS = NetworkParameters(n_input=20, hidden_sizes=(12, 8), n_output=4, n_steps=10, weight_init_gain=8.0)
SAMPLES = [
    (np.arange(20), np.full(20, 2)),
    (np.arange(0, 20, 2), np.full(10, 5)),
    (np.arange(1, 20, 3), np.arange(1, 20, 3) % 10),
]
LABELS = np.array([0, 1, 2])
NOW = dict(steps_per_epoch=1, constraint_warmup_steps=0, pruning_warmup_steps=0)
RECORD_KEYS = {
    "development_step", "actions", "pruning_rates", "regeneration_percentile", "neurons_alive",
    "neurons_pruned", "neurons_revived", "synapses", "synapses_removed", "synapses_added",
    "mean_spine_width", "tracked_synapses", "sops_per_sample", "rules", "rebuilt", "seconds",
}


def brian2_pairs(network: SpikingNetwork, name: str) -> set:
    synapses = network[name]
    return set(zip(np.asarray(synapses.i[:]).tolist(), np.asarray(synapses.j[:]).tolist()))


def structure_pairs(projection) -> set:
    return set(zip(projection.i.tolist(), projection.j.tolist()))


def assert_network_matches(network: SpikingNetwork, structure) -> None:
    names = sorted(obj.name for obj in network.network.objects if isinstance(obj, Synapses))
    assert names == sorted(p.name for p in structure.projections), "one Synapses per projection, no stale one"
    for projection in structure.projections:
        assert network[projection.name].name == projection.name
        assert brian2_pairs(network, projection.name) == structure_pairs(projection), \
            f"{projection.name}: Brian2 connectivity = structure.exists"
        i, j = network.synapse_pairs(projection.name)
        np.testing.assert_array_equal(np.asarray(network[projection.name].w[:]), projection.weight[i, j])
    for population in structure.populations[1:]:
        np.testing.assert_array_equal(network.alive(population.name), population.alive)


def assert_same_simulation(run, reference) -> None:
    """Same spikes in every layer and same recorded potentials (hidden_2, output), bit for bit."""
    for name in ("hidden_1", "hidden_2", "output"):
        np.testing.assert_array_equal(run.dense_spikes(name), reference.dense_spikes(name))
    for name in ("hidden_2", "output"):
        np.testing.assert_array_equal(run.potentials[name], reference.potentials[name])


def test_pruned_neurons_emit_no_spike_and_synapses_are_rebuilt_under_their_names(rng):
    structure = initial_structure(PARAMS, rng)
    for projection in structure.projections:
        projection.weight[:] = 2.0  # every presynaptic spike fires the target
        projection.spine.upper[:], projection.spine.lower[:] = 3.0, -3.0
    network = SpikingNetwork(structure, PARAMS)
    before = network.present(SAMPLES)
    assert np.all(before.spike_counts("hidden_1").sum(axis=0) > 0), "every hidden neuron fires"
    objects = {p.name: network[p.name] for p in structure.projections}
    scheduler = StructuralScheduler(network, structure, Schedule(**NOW, regeneration=False),
                                    DevelopmentParameters(initial_pruning_rate=0.25))
    record = scheduler.step()
    assert record["neurons_pruned"] == {"hidden_1": 3, "hidden_2": 2}
    assert sorted(record["rebuilt"]) == sorted(p.name for p in structure.projections)
    for name in record["rebuilt"]:
        assert network[name] is not objects[name], f"{name} is a new Synapses object"
    assert_network_matches(network, structure)
    after = network.present(SAMPLES)
    for name in ("hidden_1", "hidden_2"):
        alive = structure.population(name).alive
        counts = after.spike_counts(name).sum(axis=0)
        assert np.all(counts[~alive] == 0), f"pruned {name} neurons never fire"
        assert np.all(counts[alive] > 0), f"the surviving {name} neurons still fire"


def prepare_regrowth(scheduler: StructuralScheduler, projection: str) -> set:
    """Remove a block of synapses by condition and give them large latent weights."""
    i, j = scheduler.prune(projection, "i < 4 and j < 3")
    removed = set(zip(i.tolist(), j.tolist()))
    assert len(removed) == 12
    scheduler.structure.projection(projection).weight[i, j] = 50.0
    return removed


def test_a_network_rebuilt_by_the_scheduler_simulates_like_a_fresh_one(rng):
    structure = initial_structure(PARAMS, rng)
    network = SpikingNetwork(structure, PARAMS, record_potentials=("hidden_2", "output"))
    network.present(SAMPLES)
    params = DevelopmentParameters(initial_pruning_rate=0.2, regrowth_consecutive_steps=0)
    scheduler = StructuralScheduler(network, structure, Schedule(**NOW), params)
    removed = prepare_regrowth(scheduler, "input_to_hidden_1")
    record = scheduler.step()
    regrown = structure_pairs(structure.projection("input_to_hidden_1")) & removed
    assert record["synapses_added"]["input_to_hidden_1"] == len(regrown) > 0
    assert record["neurons_pruned"]["hidden_1"] == 2
    assert_network_matches(network, structure)
    fresh = SpikingNetwork(structure.copy(), PARAMS, record_potentials=("hidden_2", "output"))
    assert_same_simulation(network.present(SAMPLES), fresh.present(SAMPLES))


def test_the_learners_moments_restart_for_regrown_synapses(rng):
    structure = initial_structure(PARAMS, rng)
    network = SpikingNetwork(structure, PARAMS)
    learner = Learner(structure, PARAMS.layer_dynamics(), LearningParameters(), n_threads=1)
    batch = InputBatch.from_samples(SAMPLES, PARAMS.n_steps, PARAMS.n_input)
    params = DevelopmentParameters(initial_pruning_rate=0.0, regrowth_consecutive_steps=0)
    scheduler = StructuralScheduler(network, structure, Schedule(**NOW), params, learner)
    name = "input_to_hidden_1"
    removed = prepare_regrowth(scheduler, name)
    learner.train_step(batch, LABELS)
    first, second = learner.optimizer.first_moment[name], learner.optimizer.second_moment[name]
    rows, cols = map(np.array, zip(*sorted(removed)))
    assert np.all(second[rows, cols] > 0), "latent weights of absent synapses keep learning"
    record = scheduler.step()  # the rules regrow them
    assert record["synapses_added"][name] == 12
    assert np.all(first[rows, cols] == 0) and np.all(second[rows, cols] == 0), "fresh moments"
    assert np.count_nonzero(second) > 12, "the other synapses keep theirs"
    # by condition, on the live network
    i, j = scheduler.prune(name, "i == 7")
    learner.train_step(batch, LABELS)
    assert np.all(second[i, j] > 0)
    i2, j2 = scheduler.regrow(name, "i == 7")
    np.testing.assert_array_equal(np.sort(i2 * 100 + j2), np.sort(i * 100 + j))
    assert np.all(first[i2, j2] == 0) and np.all(second[i2, j2] == 0)


def test_scheduler_record_contents_and_resume(rng):
    structure = initial_structure(PARAMS, rng)
    network = SpikingNetwork(structure, PARAMS)
    learner = Learner(structure, PARAMS.layer_dynamics(), LearningParameters(), n_threads=1)
    learner.train_step(InputBatch.from_samples(SAMPLES, PARAMS.n_steps, PARAMS.n_input), LABELS)
    schedule = Schedule(steps_per_epoch=2, constraint_warmup_steps=1, pruning_warmup_steps=1)
    scheduler = StructuralScheduler(network, structure, schedule, DevelopmentParameters(initial_pruning_rate=0.25),
                                    learner)
    # 2 steps per epoch of 4 batches: after batches 2 and 4
    assert scheduler.after_batch(1, 4) is None, "batch 1 does not end a development step"
    first = scheduler.after_batch(2, 4)
    assert set(first) == RECORD_KEYS
    json.dumps(first)
    assert first["development_step"] == 1 and first["regeneration_percentile"] is None
    assert first["actions"] == {"spines": True, "constrain": False, "prune": False, "regenerate": False}
    assert first["synapses_removed"] == {"input_to_hidden_1": 0, "hidden_1_to_hidden_2": 0, "hidden_2_to_output": 0}
    assert first["sops_per_sample"] > 0
    assert first["rebuilt"] == []
    assert_network_matches(network, structure)  # the learner's weights reached Brian2 without a rebuild
    assert scheduler.after_batch(3, 4) is None
    second = scheduler.after_batch(4, 4)
    json.dumps(second)
    assert second["actions"] == {"spines": True, "constrain": True, "prune": True, "regenerate": True}
    assert second["regeneration_percentile"] == 61.0
    assert second["neurons_alive"] == {"input": 20, "hidden_1": 9, "hidden_2": 6, "output": 4}
    assert second["neurons_pruned"] == {"hidden_1": 3, "hidden_2": 2}
    assert second["synapses_removed"]["hidden_1_to_hidden_2"] == 3 * 8 + 2 * 9
    for projection in structure.projections:
        assert second["synapses"][projection.name] == projection.n_synapses == int(network[projection.name].N[:])
    rates = second["pruning_rates"]
    assert rates["hidden_1"] == pytest.approx(0.25 + 0.01 * 9 / 6, abs=1e-12)
    assert rates["hidden_2"] == pytest.approx(0.25 + 0.005 * 6 / 4, abs=1e-12)
    assert float(network["hidden_1"].pruning_rate[:]) == pytest.approx(rates["hidden_1"])
    assert float(network["hidden_1"].trophic_pressure[:]) == pytest.approx(9 / 6)
    assert second["rules"]["populations"]["hidden_1"]["pruned"] == np.flatnonzero(
        ~structure.population("hidden_1").alive).tolist()
    assert set(second["tracked_synapses"]["input_to_hidden_1"]) == {"w", "lower", "upper", "exists"}
    resumed = StructuralScheduler(network, structure, schedule, DevelopmentParameters(initial_pruning_rate=0.25),
                                  learner, state=json.loads(json.dumps(scheduler.state_dict())))
    assert resumed.state.to_dict() == scheduler.state.to_dict()
    assert resumed.step()["development_step"] == 3


def test_prune_and_regrow_by_condition_on_a_live_network(rng):
    structure = initial_structure(PARAMS, rng)
    network = SpikingNetwork(structure, PARAMS)
    network.present(SAMPLES[:1])
    scheduler = StructuralScheduler(network, structure, Schedule(), DevelopmentParameters())
    name = "hidden_1_to_hidden_2"
    expected = np.abs(structure.projection(name).weight) < 0.5
    i, j = scheduler.prune(name, "abs(w) < 0.5")
    assert set(zip(i.tolist(), j.tolist())) == set(zip(*map(np.ndarray.tolist, np.nonzero(expected))))
    assert_network_matches(network, structure)
    i, j = scheduler.regrow(name, "i < 3 and alive_post", w=0.25)
    assert np.all(np.asarray(network[name].w[:])[
        [k for k, pair in enumerate(zip(*network.synapse_pairs(name))) if pair[0] < 3]] != 0)
    assert np.all(structure.projection(name).weight[i, j] == 0.25)
    assert_network_matches(network, structure)
    with pytest.raises(ValueError, match="unknown variable 'weight'"):
        scheduler.prune(name, "weight < 1")
    assert_network_matches(network, structure)
    network.present(SAMPLES[:1])  # still runs


def test_spine_variables_in_brian2(rng):
    structure = initial_structure(PARAMS, rng)
    network = SpikingNetwork(structure, PARAMS)
    scheduler = StructuralScheduler(network, structure, Schedule(**NOW, pruning=False, regeneration=False),
                                    DevelopmentParameters(), mirror_spines=True, read_network=True)
    name = "hidden_2_to_output"
    network[name].spine_range_upper[:] = 0.125  # an edit made on the Brian2 object
    scheduler.step()
    projection = structure.projection(name)
    np.testing.assert_array_equal(projection.spine.upper, 0.125), "read_network pulled the edit"
    assert np.all(projection.weight <= 0.125), "and the constraint used it"
    i, j = network.synapse_pairs(name)
    state = network.read_synapse_state(name)
    for field in ("upper", "lower", "shrink_streak", "previous_abs_weight"):
        np.testing.assert_array_equal(state[field], getattr(projection.spine, field)[i, j])


def twin(rng_seed: int, sync: str):
    """A network, its learner and a scheduler with the given sync, all from the same seed."""
    structure = initial_structure(PARAMS, np.random.default_rng(rng_seed))
    network = SpikingNetwork(structure, PARAMS, record_potentials=("hidden_2", "output"))
    learner = Learner(structure, PARAMS.layer_dynamics(), LearningParameters(), n_threads=1)
    params = DevelopmentParameters(initial_pruning_rate=0.2, regrowth_consecutive_steps=0)
    scheduler = StructuralScheduler(network, structure, Schedule(**NOW), params, learner, sync=sync)
    return structure, network, learner, scheduler


def test_lazy_and_eager_sync_give_the_same_development_and_the_same_brian2_spikes():
    batch = InputBatch.from_samples(SAMPLES, PARAMS.n_steps, PARAMS.n_input)
    runs = {sync: twin(7, sync) for sync in ("eager", "lazy")}
    built = {p.name: runs["lazy"][1][p.name] for p in runs["lazy"][0].projections}
    logs, regrown = {}, {}
    for sync, (structure, network, learner, scheduler) in runs.items():
        prepare_regrowth(scheduler, "input_to_hidden_1")  # scheduler.prune by condition
        logs[sync] = []
        for _ in range(3):
            learner.train_step(batch, LABELS)
            logs[sync].append(scheduler.step())
        scheduler.prune("hidden_2_to_output", "abs(w) < 0.5")
        regrown[sync] = scheduler.regrow("hidden_2_to_output", "abs(w) < 0.25", w=0.5)
    eager, lazy = logs["eager"], logs["lazy"]
    np.testing.assert_array_equal(regrown["eager"], regrown["lazy"])
    assert regrown["lazy"][0].size > 0, "scheduler.regrow restored synapses"
    assert any(record["rebuilt"] for record in eager), "the eager network was rebuilt during the steps"
    assert all(record["rebuilt"] == [] for record in lazy), "the lazy network was not"
    assert sum(sum(record["synapses_added"].values()) + sum(record["synapses_removed"].values())
               for record in lazy) > 0, "connectivity changed"
    strip = [{k: v for k, v in record.items() if k not in ("seconds", "rebuilt")} for record in eager]
    assert strip == [{k: v for k, v in record.items() if k not in ("seconds", "rebuilt")} for record in lazy]
    (eager_structure, eager_network, _, _), (lazy_structure, lazy_network, _, lazy_scheduler) = (
        runs["eager"], runs["lazy"])
    for a, b in zip(eager_structure.to_arrays().values(), lazy_structure.to_arrays().values()):
        np.testing.assert_array_equal(a, b)
    assert all(lazy_network[name] is synapses for name, synapses in built.items()), \
        "lazy: the Synapses objects built at the start are still in place"
    assert_network_matches(eager_network, eager_structure)
    rebuilt = lazy_scheduler.sync()  # what evaluate() does with network.load_structure
    assert sorted(rebuilt) == sorted(p.name for p in lazy_structure.projections)
    assert_network_matches(lazy_network, lazy_structure)
    assert_same_simulation(lazy_network.present(SAMPLES), eager_network.present(SAMPLES))


def test_sync_option_errors_name_the_problem(rng):
    structure = initial_structure(PARAMS, rng)
    network = SpikingNetwork(structure, PARAMS)
    with pytest.raises(ValueError, match="sync must be 'eager' or 'lazy', got 'later'"):
        StructuralScheduler(network, structure, Schedule(), DevelopmentParameters(), sync="later")
    with pytest.raises(ValueError, match="read_network=True need sync='eager'"):
        StructuralScheduler(network, structure, Schedule(), DevelopmentParameters(), sync="lazy",
                            read_network=True)


def test_development_keys_in_the_experiment_config():
    from sdsnn_bio.config import ConfigError, ExperimentConfig

    config = ExperimentConfig.from_dict({"development": {
        "enabled": True, "consecutive_steps": 5, "steps_per_epoch": 2, "regeneration": False,
        "regrowth_consecutive_steps": 3,
    }})
    schedule = config.schedule().resolve(config.development_parameters().consecutive_steps)
    assert (schedule.constraint_warmup_steps, schedule.pruning_warmup_steps) == (5, 10)
    assert config.development_parameters().regrowth_steps == 3
    with pytest.raises(ConfigError, match=r"development.shrink_factor: expected a number in \(0, 1\], got 2.0"):
        ExperimentConfig.from_dict({"development": {"shrink_factor": 2.0}})
    with pytest.raises(ConfigError, match="development.regrowth_consecutive_steps: expected an integer >= 0 or None"):
        ExperimentConfig.from_dict({"development": {"regrowth_consecutive_steps": "ten"}})
    with pytest.raises(ConfigError, match=r"development.steps_per_epoch: expected a number > 0 .*got 0"):
        ExperimentConfig.from_dict({"development": {"steps_per_epoch": 0}})
    with pytest.raises(ConfigError, match=r"development.interval_batches: no longer exists.*"
                                          r"development.steps_per_epoch = \(training batches per epoch\) "
                                          r"/ interval_batches"):
        ExperimentConfig.from_dict({"development": {"interval_batches": 10}})


def test_the_schedulers_collaborators_are_protocols(rng):
    from sdsnn_bio.development import DevelopingNetwork, StructureLearner

    structure = initial_structure(PARAMS, rng)
    network = SpikingNetwork(structure, PARAMS)
    learner = Learner(structure, PARAMS.layer_dynamics(), LearningParameters(), n_threads=1)
    assert isinstance(network, DevelopingNetwork) and isinstance(learner, StructureLearner)
    with pytest.raises(TypeError, match=r"network must provide the methods of DevelopingNetwork "
                                        r"\(object lacks \['load_structure', 'read_synapse_state', "):
        StructuralScheduler(object(), structure, Schedule(), DevelopmentParameters())
    with pytest.raises(TypeError, match=r"learner must provide the methods of StructureLearner "
                                        r"\(SpikingNetwork lacks \['structure_changed'\]\)"):
        StructuralScheduler(network, structure, Schedule(), DevelopmentParameters(), network)
    scheduler = StructuralScheduler(network, structure, Schedule(), DevelopmentParameters(consecutive_steps=3))
    assert scheduler.schedule.is_resolved and scheduler.schedule.pruning_warmup_steps == 6


def test_the_configs_schedule_is_in_force():
    from sdsnn_bio.config import ExperimentConfig

    config = ExperimentConfig.from_dict({"development": {"consecutive_steps": 4}})
    schedule = config.schedule()
    assert (schedule.constraint_warmup_steps, schedule.pruning_warmup_steps,
            schedule.regeneration_warmup_steps) == (4, 8, 8), "warm-ups derived from K, no resolve needed"

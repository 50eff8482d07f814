"""The Brian2 model of record: equations, parameters, network building and rebuilding."""

from __future__ import annotations

import numpy as np
import pytest
from brian2 import Equations, mV, ms, second

from sdsnn_bio.model import (
    NetworkParameters,
    NeuronParameters,
    SpikingNetwork,
    initial_structure,
    lif_equations,
    synapse_equations,
)


def tiny_params(**changes) -> NetworkParameters:
    base = dict(n_input=12, hidden_sizes=(6,), n_output=3, n_steps=10, weight_init_gain=8.0)
    base.update(changes)
    return NetworkParameters(**base)


def test_equations_are_printable_brian2_equations_with_units_and_comments():
    neuron, synapse = lif_equations(), synapse_equations()
    assert isinstance(neuron, Equations) and isinstance(synapse, Equations)
    text = str(neuron)
    assert "dv/dt = -v / tau_membrane" in text, "the LIF equation is printed as written"
    assert {"v", "alive", "importance", "pruning_rate", "trophic_pressure"} <= set(neuron.names)
    assert {"w", "spine_range_lower", "spine_range_upper", "upper_streak", "shrink_streak",
            "previous_abs_weight", "regrowth_streak"} <= set(synapse.names)
    assert neuron["alive"].var_type == "boolean", "alive is a boolean per neuron"


def test_pinned_lif_trajectory_against_literal_numbers():
    """One neuron, one input channel of weight 0.6: Brian2's potential, step by step."""
    params = NetworkParameters(n_input=1, hidden_sizes=(1,), n_output=1, n_steps=8)
    structure = initial_structure(params, np.random.default_rng(0))
    structure.projection("input_to_hidden_1").weight[:] = 0.6
    network = SpikingNetwork(structure, params, record_potentials=("hidden_1",))
    recording = network.present([(np.array([0, 0, 0, 0]), np.array([0, 1, 2, 5]))])
    decay = np.exp(-0.05)
    assert decay == pytest.approx(0.951229424500714, abs=1e-15)
    u = recording.potentials["hidden_1"][:, 0, 0]  # potential tested against the threshold
    # step 0: rest, input 0.6 arrives; step 1: 0.6*d seen, input arrives; step 2: (0.6d+0.6)*d > 1
    # fires, its input is lost to the reset; steps 3-5 at rest (input of step 5 arrives); 6, 7 decay.
    expected = [0.0, 0.5707376547004284, 1.1136401055220042, 0.0, 0.0, 0.0,
                0.5707376547004284, 0.5429024508215757]
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-14)
    sample, step, neuron = recording.spikes["hidden_1"]
    assert step.tolist() == [2] and sample.tolist() == [0] and neuron.tolist() == [0]


def test_pruned_neuron_emits_no_spike(rng):
    params = tiny_params()
    structure = initial_structure(params, rng)
    structure.projection("input_to_hidden_1").weight[:] = 2.0  # every input spike fires
    network = SpikingNetwork(structure, params)
    samples = [(np.arange(12), np.full(12, 3))]
    before = network.present(samples).spike_counts("hidden_1")[0]
    assert np.all(before > 0), "with strong input every hidden neuron fires"
    alive = np.ones(6, bool)
    alive[[1, 4]] = False
    network.set_alive("hidden_1", alive)
    after = network.present(samples).spike_counts("hidden_1")[0]
    assert after[1] == 0 and after[4] == 0, "pruned neurons never fire"
    assert np.array_equal(after[alive], before[alive]), "the others are unaffected"


def test_rebuilt_network_simulates_like_a_fresh_one(rng):
    params = tiny_params(hidden_sizes=(7,))
    structure = initial_structure(params, rng)
    samples = [(rng.integers(0, 12, 30), rng.integers(0, 10, 30)) for _ in range(3)]
    samples = [(np.unique(s * 12 + c) % 12, np.unique(s * 12 + c) // 12) for c, s in samples]
    network = SpikingNetwork(structure, params, record_potentials=("hidden_1", "output"))
    network.present(samples)  # it has run: groups cannot join a new Network any more
    changed = structure.copy()
    projection = changed.projection("input_to_hidden_1")
    projection.exists[rng.random(projection.shape) < 0.4] = False
    projection.weight *= 1.5
    rebuilt = network.load_structure(changed)
    assert rebuilt == ["input_to_hidden_1"], "only the projection whose connectivity changed is rebuilt"
    assert network["input_to_hidden_1"].N[:] == projection.n_synapses
    after_rebuild = network.present(samples)
    fresh = SpikingNetwork(changed, params, record_potentials=("hidden_1", "output"))
    expected = fresh.present(samples)
    for name in ("hidden_1", "output"):
        assert np.array_equal(after_rebuild.dense_spikes(name), expected.dense_spikes(name))
        np.testing.assert_array_equal(after_rebuild.potentials[name], expected.potentials[name])


def test_synapse_state_round_trip(rng):
    params = tiny_params()
    structure = initial_structure(params, rng)
    projection = structure.projection("hidden_1_to_output")
    projection.spine.upper_streak[2, 1] = 5
    projection.spine.lower[:] = -0.25
    network = SpikingNetwork(structure, params)
    state = network.read_synapse_state("hidden_1_to_output")
    i, j = state["i"], state["j"]
    np.testing.assert_array_equal(state["w"], projection.weight[i, j])
    np.testing.assert_array_equal(state["upper_streak"], projection.spine.upper_streak[i, j])
    assert np.all(state["lower"] == -0.25)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("tau_membrane", -5 * ms, "NeuronParameters.tau_membrane: expected a time > 0"),
        ("tau_membrane", 20, "expected a time with a Brian2 unit"),
        ("tau_membrane", 20 * mV, "expected a time (unit of seconds)"),
        ("refractory", -1 * ms, "NeuronParameters.refractory: expected a time >= 0"),
        ("v_reset", 2.0, "NeuronParameters.v_reset: expected a value below v_threshold"),
    ],
)
def test_neuron_parameter_errors_name_the_field(field, value, message):
    with pytest.raises(ValueError) as info:
        NeuronParameters(**{field: value})
    assert message in str(info.value)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("n_steps", 0, "NetworkParameters.n_steps: expected an integer >= 1, got 0"),
        ("hidden_sizes", (), "NetworkParameters.hidden_sizes: expected at least one hidden layer"),
        ("hidden_sizes", (5, -1), "expected integers >= 1"),
        ("dt", 0 * second, "NetworkParameters.dt: expected a time > 0"),
    ],
)
def test_network_parameter_errors_name_the_field(field, value, message):
    with pytest.raises(ValueError) as info:
        tiny_params(**{field: value})
    assert message in str(info.value)


def test_present_rejects_out_of_range_input(rng):
    params = tiny_params()
    network = SpikingNetwork(initial_structure(params, rng), params)
    with pytest.raises(ValueError, match=r"channel indices outside \[0, 12\)"):
        network.present([(np.array([12]), np.array([0]))])
    with pytest.raises(ValueError, match=r"time steps outside \[0, 10\)"):
        network.present([(np.array([0]), np.array([10]))])


def test_a_brian2_run_stopped_early_is_an_interrupt_not_a_reshape_error(monkeypatch):
    """Brian2 stops a run() on Ctrl-C (its own SIGINT handler); present must not use half a batch."""
    import brian2
    import numpy as np

    from sdsnn_bio.model import NetworkParameters, SpikingNetwork, initial_structure

    params = NetworkParameters(n_input=20, hidden_sizes=(5,), n_output=3, n_steps=10)
    network = SpikingNetwork(initial_structure(params, np.random.default_rng(0)), params)
    original = brian2.Network.run

    def stopped_half_way(self, duration, *args, **kwargs):
        return original(self, duration / 2, *args, **kwargs)

    monkeypatch.setattr(brian2.Network, "run", stopped_half_way)
    sample = (np.array([1, 2]), np.array([0, 3]))
    with pytest.raises(KeyboardInterrupt, match="stopped the run after 10 of 20 time steps"):
        network.present([sample, sample])


@pytest.mark.parametrize("retired", [False, True])
def test_a_retired_network_that_never_ran_is_deleted_without_brian2_warnings(rng, retired):
    # With the C++ standalone evaluation the runtime network of record may never be simulated;
    # the README's main job then printed Brian2's "never included in a network" warning for
    # every group and synapse object.
    import gc

    from brian2.utils.logger import catch_logs

    params = tiny_params()
    # Networks of earlier tests in this worker that are still waiting for the cycle collector would
    # warn inside the capture below under the same names: collect them first.
    gc.collect()
    network = SpikingNetwork(initial_structure(params, rng), params)
    with catch_logs() as logs:
        if retired:
            network.retire()
        del network
        gc.collect()
    unused = [entry for entry in logs if "unused_brian_object" in entry[1]]
    if retired:
        assert unused == [], "retired: no warning"
    else:
        assert unused, "the warning this guards against (Brian2 prints it for never-run objects)"

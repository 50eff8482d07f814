"""Training from Brian2's recordings (``learning.forward = "brian2"``) against the kernel's forward pass.

The two sources must give the same spikes in every batch and hence the same weights (to rounding),
with pruned neurons and absent synapses, with augmented inputs, and with SD-SNN development running
between batches (Brian2 numpy target: nothing is compiled).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from brian2 import ms

from sdsnn_bio.config import ConfigError, ExperimentConfig
from sdsnn_bio.experiment import PreparedData, configuration_changes, train_model
from sdsnn_bio.forward import FORWARD_PASSES, Brian2Forward, KernelForward, training_forward
from sdsnn_bio.learning.augment import augment_samples, batch_shifts
from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.model import NetworkParameters, SpikingNetwork, initial_structure, neuron_model, synapse_model
from sdsnn_bio.runfolder import STRUCTURE, load_structure

#: 50 input channels laid out as a 5 x 5 sensor with 2 polarities, so augmentation can shift them.
SENSOR = (5, 5, 2)
N_INPUT, N_STEPS = 50, 20


def random_samples(rng, n_samples, n_events=120, n_input=N_INPUT):
    samples = []
    for _ in range(n_samples):
        key = np.unique(rng.integers(0, N_STEPS, n_events) * n_input + rng.integers(0, n_input, n_events))
        samples.append((key % n_input, key // n_input))
    return samples


#: Neuron model, synapse model, their constants, and the weight gain that makes the case spike.
MODELS = {
    "lif-voltage_jump": ("lif", "voltage_jump", {}, {}, 7.0),
    "alif-voltage_jump": ("alif", "voltage_jump", {"tau_adaptation": 40 * ms, "adaptation_increment": 0.3}, {}, 7.0),
}


def small_case(rng, model="lif-voltage_jump"):
    """50-20-3 network with two pruned hidden neurons and 30% of the input synapses absent."""
    neuron, synapse, neuron_constants, synapse_constants, gain = MODELS[model]
    params = NetworkParameters(
        n_input=N_INPUT, hidden_sizes=(20,), n_output=3, n_steps=N_STEPS, weight_init_gain=gain,
        hidden=neuron_model(neuron, refractory=2 * ms, **neuron_constants),
        output=neuron_model(neuron, tau_membrane=10 * ms, **neuron_constants),
        synapse=synapse_model(synapse, **synapse_constants),
    )
    structure = initial_structure(params, rng)
    structure.population("hidden_1").alive[[3, 11]] = False
    first = structure.projection("input_to_hidden_1")
    first.exists[rng.random(first.shape) < 0.3] = False
    return params, structure


def test_input_batch_samples_give_back_the_spikes_of_the_batch(rng):
    samples = random_samples(rng, 4)
    batch = InputBatch.from_samples(samples, N_STEPS, N_INPUT)
    back = batch.samples()
    assert len(back) == 4
    for (channels, steps), (got_channels, got_steps) in zip(samples, back):
        expected = sorted(zip(steps.tolist(), channels.tolist()))
        assert list(zip(got_steps.tolist(), got_channels.tolist())) == expected, "same spikes, step-major"
    rebuilt = InputBatch.from_samples(back, N_STEPS, N_INPUT)
    assert (rebuilt.matrix != batch.matrix).nnz == 0, "from_samples(samples()) is the same batch"


@pytest.mark.parametrize("model, backend", [("lif-voltage_jump", "numpy"), ("lif-voltage_jump", "auto"),
                                            ("alif-voltage_jump", "numpy")])
def test_a_few_batches_trained_from_brian2_give_the_kernels_weights(rng, model, backend):
    params, kernel_structure = small_case(rng, model)
    brian_structure = copy.deepcopy(kernel_structure)
    learning = LearningParameters(learning_rate=0.05, logit_scale=5.0)
    kernel = training_forward("kernel", Learner(kernel_structure, params.layer_dynamics(), learning,
                                                n_threads=1, backend=backend))
    learner = Learner(brian_structure, params.layer_dynamics(), learning, n_threads=1, backend=backend)
    network = SpikingNetwork(brian_structure, params)
    brian2 = training_forward("brian2", learner, network)
    assert isinstance(kernel, KernelForward) and isinstance(brian2, Brian2Forward)
    initial = copy.deepcopy(kernel_structure)
    first_learner = Learner(initial, params.layer_dynamics(), learning, n_threads=1, backend="numpy")
    moved_spikes = 0
    recordings = []  # what each Brian2 batch recorded, kept for the comparison below
    record = brian2.record
    brian2.record = lambda batch: recordings.append(record(batch)) or recordings[-1]
    for index in range(4):
        shifts = batch_shifts(5, 0, index, 4, 1)
        samples = augment_samples(random_samples(rng, 4), shifts, SENSOR)  # the same shifted input for both
        batch = InputBatch.from_samples(samples, N_STEPS, N_INPUT)
        labels = rng.integers(0, 3, 4)
        expected = kernel.learner.simulate(batch)
        brian2_step = brian2.train_step(batch, labels)
        kernel_step = kernel.train_step(batch, labels)
        recorded = recordings[index]
        for name in learner.order:
            assert np.array_equal(recorded[name], expected.traces[name].spikes), f"batch {index}: {name} spikes"
            assert not recorded[name][:, :, ~brian_structure.population(name).alive].any(), "pruned neurons silent"
        assert sum(int(s.sum()) for s in recorded.values()) > 50, "the case must spike to test anything"
        # Brian2 simulates with the trained weights, not the ones it was built with:
        before = first_learner.simulate(batch)
        moved_spikes += sum(int((before.traces[n].spikes != recorded[n]).sum()) for n in learner.order)
        assert brian2_step.loss == pytest.approx(kernel_step.loss, rel=1e-12)
        assert brian2_step.spike_counts == kernel_step.spike_counts
    assert moved_spikes > 0, "training changed the spikes, so the weights were pushed into Brian2"
    for mine, theirs in zip(brian_structure.projections, kernel_structure.projections):
        np.testing.assert_allclose(mine.weight, theirs.weight, rtol=0, atol=1e-12, err_msg=mine.name)
        assert not np.array_equal(mine.weight, initial.projection(mine.name).weight), "weights trained"
    assert network.load_weights(brian_structure) == [], "unchanged connectivity rebuilds nothing"


def test_changed_connectivity_is_rebuilt_before_the_next_brian2_batch(rng):
    params, structure = small_case(rng)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1, backend="numpy")
    forward = training_forward("brian2", learner, SpikingNetwork(structure, params))
    batch = InputBatch.from_samples(random_samples(rng, 3), N_STEPS, N_INPUT)
    forward.record(batch)
    structure.projection("hidden_1_to_output").exists[:5] = False  # development removed synapses
    structure.population("hidden_1").alive[[0, 1]] = False  # and pruned neurons
    recorded = forward.record(batch)
    expected = learner.simulate(batch)
    for name in learner.order:
        assert np.array_equal(recorded[name], expected.traces[name].spikes), name
    network = forward.network
    assert len(network.synapse_pairs("hidden_1_to_output")[0]) == int(
        structure.projection("hidden_1_to_output").exists.sum()), "the synapses were rebuilt"
    assert not network.alive("hidden_1")[[0, 1]].any()


def test_brian2_forward_refuses_the_unmasked_forward_pass(rng):
    params, structure = small_case(rng)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(masked_forward=False),
                      n_threads=1, backend="numpy")
    with pytest.raises(ValueError, match="'brian2' needs learning.masked_forward = true"):
        training_forward("brian2", learner, SpikingNetwork(structure, params))
    with pytest.raises(ValueError, match=r"learning.forward: expected one of \['kernel', 'brian2'\], got 'nest'"):
        training_forward("nest", learner)


def test_forward_is_a_validated_config_key(tmp_path):
    assert ExperimentConfig().learning.forward == "kernel" == FORWARD_PASSES[0], "the kernel is the default"
    assert ExperimentConfig.from_dict({"learning": {"forward": "brian2"}}).learning.forward == "brian2"
    with pytest.raises(ConfigError, match=r"learning.forward: expected one of \['kernel', 'brian2'\], got 'Brian2'"):
        ExperimentConfig.from_dict({"learning": {"forward": "Brian2"}})
    with pytest.raises(ConfigError, match="learning.forward: 'brian2' needs learning.masked_forward = true"):
        ExperimentConfig.from_dict({"learning": {"forward": "brian2", "masked_forward": False}})
    echo = ExperimentConfig().to_dict()
    older = copy.deepcopy(echo)
    del older["learning"]["forward"]  # a checkpoint written before the key existed (kernel-trained)
    assert configuration_changes(older, echo) == []
    brian2 = ExperimentConfig.from_dict({"learning": {"forward": "brian2"}}).to_dict()
    assert configuration_changes(older, brian2) == ["learning.forward"]


def _class_samples(rng, labels, n_input=2312, n_steps=12):
    block = n_input // 10
    samples = []
    for label in labels:
        channels = np.concatenate([rng.choice(np.arange(label * block, (label + 1) * block), 60, replace=False),
                                   rng.choice(n_input, 20, replace=False)])
        pairs = np.unique(np.stack([channels, rng.integers(0, n_steps, channels.size)]), axis=1)
        samples.append((pairs[0].astype(np.int64), pairs[1].astype(np.int64)))
    return samples


def test_sdsnn_training_with_brian2_forward_ends_with_the_kernels_structure(tmp_path):
    """Whole runs with development and augmentation: same weights, connectivity and neurons kept."""
    rng = np.random.default_rng(7)
    train_labels, test_labels = np.tile(np.arange(4), 6), np.arange(4)
    data = PreparedData(_class_samples(rng, train_labels), train_labels, _class_samples(rng, test_labels),
                        test_labels, {"source": "test fixture: class-dependent random spikes"})
    structures = {}
    for forward in FORWARD_PASSES:
        config = ExperimentConfig.from_dict({
            "network": {"hidden_sizes": [12], "n_steps": 12, "dt": "5 ms", "weight_init_gain": 6.0},
            "learning": {"batch_size": 6, "epochs": 2, "learning_rate": 0.01, "threads": 1,
                         "augment_max_shift": 1, "forward": forward},
            "development": {"enabled": True, "steps_per_epoch": 3, "consecutive_steps": 1},
            "simulation": {"codegen_target": "numpy", "evaluation_batch": 4, "evaluation_device": "runtime"},
            "run": {"seed": 3, "output_dir": str(tmp_path / forward)},
        })
        result = train_model(config, data, tmp_path / forward, development=True, progress=False)
        assert result["development_log"], "development steps ran between the batches"
        structures[forward] = load_structure(tmp_path / forward / STRUCTURE)
    kernel, brian2 = structures["kernel"], structures["brian2"]
    removed = sum(int((~p.exists).sum()) for p in kernel.projections)
    assert removed > 0, "development removed synapses, so rebuilt Synapses took part in training"
    for mine, theirs in zip(brian2.projections, kernel.projections):
        assert np.array_equal(mine.exists, theirs.exists), f"{mine.name}: same connectivity"
        np.testing.assert_allclose(mine.weight, theirs.weight, rtol=0, atol=1e-9, err_msg=mine.name)
    for mine, theirs in zip(brian2.populations, kernel.populations):
        assert np.array_equal(mine.alive, theirs.alive), f"{mine.name}: same neurons kept"


#: A small conv net on a 2 x 6 x 6 input (72 channels): conv 3C3 (108 neurons), pooled 2 x 2 into
#: conv 4C3 (36), pooled again into 10 fully-connected neurons, 3 outputs.
CONV_LAYERS, CONV_INPUT = ["3C3", "AP2", "4C3", "AP2", "10FC"], (2, 6, 6)
#: Neuron model, synapse model, their constants, the gain that makes every layer spike, and whether
#: the input is direct (analog intensities, the same at every step) rather than spikes.
CONV_MODELS = {
    "lif-voltage_jump": ("lif", "voltage_jump", {}, {}, 6.0, False),
    "alif-current_exponential": ("alif", "current_exponential",
                                 {"tau_adaptation": 40 * ms, "adaptation_increment": 0.2},
                                 {"tau_synapse": 4 * ms}, 25.0, False),
    "lif-voltage_jump-direct": ("lif", "voltage_jump", {}, {}, 5.0, True),
}


def conv_case(rng, model):
    """The conv net above with a pruned channel of conv2 and 20% of conv2's kernel elements absent."""
    neuron, synapse, neuron_constants, synapse_constants, gain, direct = CONV_MODELS[model]
    params = NetworkParameters.from_layers(
        CONV_LAYERS, CONV_INPUT, 3, n_steps=N_STEPS, weight_init_gain=gain,
        hidden=neuron_model(neuron, refractory=1 * ms, **neuron_constants),
        output=neuron_model(neuron, tau_membrane=10 * ms, **neuron_constants),
        synapse=synapse_model(synapse, **synapse_constants), direct_input=direct,
    )
    structure = initial_structure(params, rng)
    structure.population("hidden_2").alive[1] = False  # a pruned channel: its 9 positions silent
    second = structure.projection("hidden_1_to_hidden_2")
    second.exists[rng.random(second.shape) < 0.2] = False
    return params, structure


@pytest.mark.parametrize("model, backend", [("lif-voltage_jump", "numpy"), ("lif-voltage_jump", "auto"),
                                            ("alif-current_exponential", "auto"), ("lif-voltage_jump-direct", "auto")])
def test_a_conv_net_trained_from_brian2_gives_the_kernels_weights_bit_for_bit(rng, model, backend):
    """Convolutions and pooling folded into the projections (one Brian2 synapse per kernel element
    and position, the learner's shared weights): three batches trained both ways, the connectivity
    changed by "development" (a channel pruned, kernel elements removed) before the third.

    Bit for bit, not to rounding: the spikes are equal, and given equal spikes the reconstruction
    runs the very operations of the kernel's forward pass (the same ``Geometry.forward`` products of
    the same spikes and weights, the model's step with the recorded spikes in place of its
    threshold; with the Numba backend the compiled shared kernels, given the spikes), so the
    potentials, gradients and Adam updates are the same floating-point numbers."""
    n_input = int(np.prod(CONV_INPUT))
    params, kernel_structure = conv_case(rng, model)
    assert params.n_input == n_input
    brian_structure = copy.deepcopy(kernel_structure)
    learning = LearningParameters(learning_rate=0.05, logit_scale=5.0)
    kernel = training_forward("kernel", Learner(kernel_structure, params.layer_dynamics(), learning,
                                                n_threads=1, backend=backend))
    learner = Learner(brian_structure, params.layer_dynamics(), learning, n_threads=1, backend=backend)
    brian2 = training_forward("brian2", learner, SpikingNetwork(brian_structure, params))
    initial = copy.deepcopy(kernel_structure)
    spike_totals = dict.fromkeys(learner.order, 0)
    for index in range(3):
        if index == 2:  # development between batches: the Synapses of conv2 are rebuilt
            for structure in (kernel_structure, brian_structure):
                structure.population("hidden_2").alive[2] = False
                structure.projection("hidden_1_to_hidden_2").exists[:4] = False
        if params.direct_input:
            samples = [np.where(rng.random(n_input) < 0.6, rng.random(n_input), 0.0) for _ in range(4)]
        else:
            samples = random_samples(rng, 4, n_events=250, n_input=n_input)
        batch = InputBatch.from_samples(samples, N_STEPS, n_input)
        labels = rng.integers(0, 3, 4)
        expected = kernel.learner.simulate(batch)
        recorded = brian2.record(batch)
        for name in learner.order:
            assert np.array_equal(recorded[name], expected.traces[name].spikes), f"batch {index}: {name} spikes"
            spike_totals[name] += int(recorded[name].sum())
        dead = ~brian_structure.population("hidden_2").neuron_alive
        assert not recorded["hidden_2"][:, :, dead].any(), "pruned channels silent at every position"
        brian2_step = learner.train_step(batch, labels, recorded_spikes=recorded)
        kernel_step = kernel.train_step(batch, labels)
        assert brian2_step.loss == kernel_step.loss, f"batch {index}: same loss"
        assert brian2_step.spike_counts == kernel_step.spike_counts
    assert brian2.network.load_weights(brian_structure) == [], "the rebuilt conv2 is the structure's"
    assert all(total > 10 for total in spike_totals.values()), f"every layer must spike: {spike_totals}"
    for mine, theirs in zip(brian_structure.projections, kernel_structure.projections):
        assert np.array_equal(mine.weight, theirs.weight), f"{mine.name}: weights bit for bit"
        assert not np.array_equal(mine.weight, initial.projection(mine.name).weight), f"{mine.name} trained"

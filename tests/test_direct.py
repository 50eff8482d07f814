"""Direct (analog) encoding of static images: the intensities drive the first layer at every step.

Brian2 (an input ``NeuronGroup`` holding ``x``, synapses delivering ``w * x_pre`` every step) against
the training kernel (``J_t = x W``) spike for spike, fully connected and convolutional; gradients of
the first layer by finite differences and the forward-mode derivative; configuration errors; and a
tiny ``sdsnn-bio run`` on generated MNIST IDX files.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from brian2 import ms
from conftest import loss_central_difference
from test_images import write_mnist
from test_learning import tangent_of_loss

from sdsnn_bio.config import ConfigError, ExperimentConfig
from sdsnn_bio.data.analog import IntensitySamples, is_analog_sample
from sdsnn_bio.data.images import encode_direct, image_channels
from sdsnn_bio.data.registry import ENCODINGS, encode_split, get_dataset
from sdsnn_bio.geometry import Geometry
from sdsnn_bio.learning.augment import augment_samples, shift_intensities
from sdsnn_bio.learning.fused import numba_available
from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.model import NetworkParameters, NeuronParameters, SpikingNetwork, initial_structure
from sdsnn_bio.structure import Population, Projection, SpineState, Structure

N_INPUT, N_STEPS = 40, 25
BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(not numba_available(),
                                                                      reason="Numba is not installed"))]


def intensity_samples(rng, n_samples, n_input=N_INPUT, density=0.5):
    """Intensity vectors in [0, 1], about ``1 - density`` of the channels exactly 0 (as in a digit)."""
    return [np.where(rng.random(n_input) < density, rng.random(n_input), 0.0) for _ in range(n_samples)]


def fc_case(rng, refractory=0 * ms, v_reset=0.0):
    params = NetworkParameters(
        n_input=N_INPUT, hidden_sizes=(25, 15), n_output=4, n_steps=N_STEPS, weight_init_gain=3.0,
        hidden=NeuronParameters(refractory=refractory, v_reset=v_reset),
        output=NeuronParameters(tau_membrane=10 * ms), direct_input=True,
    )
    structure = initial_structure(params, rng)
    structure.population("hidden_1").alive[[2, 5]] = False
    first = structure.projection("input_to_hidden_1")
    first.exists[rng.random(first.shape) < 0.3] = False
    return params, structure


def conv_case(rng, refractory=1 * ms):
    params = NetworkParameters.from_layers(
        ["3C3", "AP2", "4C3", "AP2", "12FC"], (2, 8, 8), 4, n_steps=N_STEPS, weight_init_gain=4.0,
        hidden=NeuronParameters(refractory=refractory), output=NeuronParameters(tau_membrane=10 * ms),
        direct_input=True,
    )
    structure = initial_structure(params, rng)
    first = structure.projection("input_to_hidden_1")
    first.exists[rng.random(first.shape) < 0.2] = False  # absent kernel elements of the analog layer
    structure.population("hidden_2").alive[1] = False  # a pruned channel
    return params, structure


def assert_kernel_equals_brian2(params, structure, samples, backend="numpy"):
    names = params.population_names[1:]
    network = SpikingNetwork(structure, params, record_potentials=names)
    network.present(samples[:2][::-1])  # an earlier batch must not leak into the next one
    recording = network.present(samples)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=2, backend=backend)
    batch = InputBatch.from_samples(samples, params.n_steps, params.n_input)
    assert batch.analog
    forward = learner.simulate(batch)
    for name in names:
        brian_spikes = recording.dense_spikes(name)
        assert brian_spikes.sum() > 10, f"{name} must spike to test anything"
        assert np.array_equal(brian_spikes, forward.traces[name].spikes), f"{name}: spikes differ"
        np.testing.assert_allclose(forward.traces[name].potential, recording.potentials[name], rtol=0,
                                   atol=1e-12, err_msg=f"{name}: potential differs from the Brian2 StateMonitor")
    # The input group's events: every channel with a non-zero intensity, at every step.
    events = recording.dense_spikes("input")
    for b, values in enumerate(samples):
        assert np.array_equal(events[:, b, :], np.broadcast_to(values != 0, events[:, b, :].shape)), b
    return recording


# ---------------------------------------------------------------------------------------- encoding
def test_direct_encoding_gives_the_intensities_in_channel_order(tmp_path):
    rng = np.random.default_rng(3)
    image = rng.random((4, 5, 3))
    values = encode_direct(image, shape=(5, 4, 3), n_steps=7)
    assert values.shape == (60,) and is_analog_sample(values)
    assert values[(2 * 4 + 3) * 5 + 1] == image[3, 1, 2], "channel (ch*H + y)*W + x"
    np.testing.assert_array_equal(values, image_channels(image, (5, 4, 3)))
    with pytest.raises(ValueError, match="n_steps: expected a positive integer"):
        encode_direct(image, shape=(5, 4, 3), n_steps=0)
    assert ENCODINGS["direct"].analog and not ENCODINGS["poisson"].analog
    assert get_dataset("mnist").encodings == ("poisson", "direct"), "poisson stays the MNIST default"

    written = write_mnist(tmp_path, n_train=10, n_test=10)
    samples, labels, _ = encode_split(get_dataset("mnist"), "test", root=tmp_path, encoding="direct",
                                      dt=1 * ms, n_steps=9)
    assert isinstance(samples, IntensitySamples) and len(samples) == 10
    images, want_labels = written["t10k"]
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(samples[4], np.float32(images[4].reshape(-1) / 255.0),
                                  err_msg="intensity value/255, rounded once to float32")
    np.testing.assert_array_equal(samples.spike_counts(), np.count_nonzero(images.reshape(10, -1), axis=1) * 9)
    subset = samples[np.array([4, 1])]
    np.testing.assert_array_equal(subset[0], samples[4])
    assert len(samples[2:5]) == 3


def test_shifted_intensities_move_the_image_and_fill_with_zero():
    image = np.arange(1, 2 * 3 * 4 + 1, dtype=float).reshape(2, 3, 4)  # (C, H, W)
    shifted = shift_intensities(image.reshape(-1), 1, -1, (4, 3, 2)).reshape(2, 3, 4)
    np.testing.assert_array_equal(shifted[:, :2, 1:], image[:, 1:, :3])
    assert not shifted[:, 2, :].any() and not shifted[:, :, 0].any()
    both = augment_samples([image.reshape(-1), (np.array([0]), np.array([0]))], [[1, -1], [1, 0]], (4, 3, 2))
    np.testing.assert_array_equal(both[0], shifted.reshape(-1))
    assert both[1][0].tolist() == [1], "spike samples are still shifted as spikes"
    with pytest.raises(ValueError, match="expected 24 intensities"):
        shift_intensities(np.zeros(5), 1, 0, (4, 3, 2))


# ---------------------------------------------------------------------------------------- Brian2 vs kernel
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("refractory, v_reset", [(0 * ms, 0.0), (2 * ms, -0.3)])
def test_kernel_gives_the_same_spikes_as_brian2_with_direct_input(rng, backend, refractory, v_reset):
    params, structure = fc_case(rng, refractory, v_reset)
    assert_kernel_equals_brian2(params, structure, intensity_samples(rng, 4), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("refractory", [0 * ms, 2 * ms], ids=["no_refractory", "refractory"])
def test_kernel_gives_the_same_spikes_as_brian2_for_a_conv_net_with_direct_input(rng, refractory, backend):
    params, structure = conv_case(rng, refractory)
    recording = assert_kernel_equals_brian2(params, structure, intensity_samples(rng, 3, n_input=128, density=0.6),
                                            backend)
    silent = recording.dense_spikes("hidden_2").reshape(N_STEPS, 3, 4, 16)[:, :, 1]
    assert not silent.any(), "the pruned channel stays silent"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("neuron", "synapse", "gain"), [("alif", "voltage_jump", 3.0),
                                                         ("lif", "current_exponential", 10.0)])
def test_direct_input_with_other_neuron_and_synapse_models(rng, backend, neuron, synapse, gain):
    """The input projection delivers w * x_pre through the synapse model's own on_pre (a current's
    jump for current_exponential), and the kernel runs the model's own step on x W."""
    from sdsnn_bio.model import neuron_model, synapse_model

    constants = {"alif": {"tau_adaptation": 40 * ms, "adaptation_increment": 0.3}, "lif": {}}[neuron]
    params = NetworkParameters(
        n_input=N_INPUT, hidden_sizes=(25, 15), n_output=4, n_steps=N_STEPS, weight_init_gain=gain,
        hidden=neuron_model(neuron, refractory=2 * ms, **constants),
        output=neuron_model(neuron, tau_membrane=10 * ms, **constants),
        synapse=synapse_model(synapse, **({"tau_synapse": 4 * ms} if synapse == "current_exponential" else {})),
        direct_input=True,
    )
    structure = initial_structure(params, rng)
    network = SpikingNetwork(structure, params)
    delivered = {"voltage_jump": "v_post += w * x_pre", "current_exponential": "synaptic_current_post += w * x_pre"}
    assert str(network["input_to_hidden_1"].pre.code).strip() == delivered[synapse]
    assert str(network["hidden_1_to_hidden_2"].pre.code).strip() == params.synapse.on_pre, "spikes above"
    assert_kernel_equals_brian2(params, structure, intensity_samples(rng, 4), backend)


def test_binary_intensities_are_spikes_at_every_step(rng):
    """x in {0, 1} presented at every step is the spike input 'every non-zero channel fires at every step':
    the same spikes, potentials and gradients."""
    params, structure = fc_case(rng)
    analog = [(rng.random(N_INPUT) < 0.4).astype(float) for _ in range(3)]
    spikes = [(np.repeat(np.flatnonzero(x), N_STEPS), np.tile(np.arange(N_STEPS), int(x.sum()))) for x in analog]
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1, backend="numpy")
    labels = np.array([0, 3, 1])
    a_batch, s_batch = (InputBatch.from_samples(s, N_STEPS, N_INPUT) for s in (analog, spikes))
    a_forward, s_forward = learner.simulate(a_batch), learner.simulate(s_batch)
    for name in a_forward.order:
        assert np.array_equal(a_forward.traces[name].spikes, s_forward.traces[name].spikes), name
        np.testing.assert_allclose(a_forward.traces[name].potential, s_forward.traces[name].potential,
                                   rtol=0, atol=1e-12)
    _, a_grads = learner.gradients(a_batch, a_forward, labels)
    _, s_grads = learner.gradients(s_batch, s_forward, labels)
    for name in a_grads:
        np.testing.assert_allclose(a_grads[name], s_grads[name], rtol=1e-10, atol=1e-14, err_msg=name)


# ---------------------------------------------------------------------------------------- gradients
def single_layer_case(rng, geometry: Geometry | None):
    """input -> output directly, so that the first (analog) projection is the output's and a membrane
    loss with the spike pattern fixed is exactly differentiable in its weights."""
    if geometry is None:
        n_input, n_output, shapes = N_INPUT, 6, (None, None)
        weight = rng.normal(0.0, 1.2 / np.sqrt(n_input), (n_input, n_output))
    else:
        n_input, n_output = geometry.n_source, geometry.n_target
        shapes = (geometry.source_shape, geometry.target_shape)
        weight = rng.normal(0.0, 2.5 / np.sqrt(geometry.parameter_shape[0]), geometry.parameter_shape)
    populations = (Population("input", n_input, shape=shapes[0]), Population("output", n_output, shape=shapes[1]))
    projection = Projection("input_to_output", "input", "output", weight, np.ones(weight.shape, bool),
                            SpineState.from_weights(weight), geometry)
    params = NetworkParameters(n_input=n_input, hidden_sizes=(1,), n_output=n_output, n_steps=N_STEPS,
                               output=NeuronParameters(tau_membrane=10 * ms, refractory=2 * ms), direct_input=True)
    dynamics = {"output": params.layer_dynamics()["output"]}
    return Structure(populations, (projection,)), dynamics, n_input


@pytest.mark.parametrize(("geometry", "backend"), [
    (None, "numpy"), pytest.param(None, "numba", marks=BACKENDS[1].marks),
    (Geometry("convolution", (2, 6, 6), 3, kernel_size=3, padding=1), "numpy"),
    pytest.param(Geometry("convolution", (2, 6, 6), 3, kernel_size=3, padding=1), "numba",
                 marks=BACKENDS[1].marks),
], ids=["dense-numpy", "dense-numba", "convolution-numpy", "convolution-numba"])
def test_finite_difference_gradient_of_the_analog_first_layer(rng, geometry, backend):
    """Membrane loss, spike pattern fixed: dL/dW of the analog projection, x^T sum_t dL/dJ_t (shared by
    every position of a kernel element for the convolution), is the exact derivative."""
    structure, dynamics, n_input = single_layer_case(rng, geometry)
    learner = Learner(structure, dynamics, LearningParameters(loss="membrane_cross_entropy", logit_scale=3.0),
                      n_threads=1, backend=backend)
    batch = InputBatch.from_samples(intensity_samples(rng, 3, n_input=n_input), N_STEPS, n_input)
    n_output = structure.population("output").size
    labels = np.array([0, 1, n_output - 1])
    forward = learner.simulate(batch)
    assert forward.output().spikes.any(), "spikes (and resets) are part of the check"
    _, grads = learner.gradients(batch, forward, labels)
    weight = structure.projection("input_to_output").weight
    for index in [(0, 0), (3, 1), (7, 2), (11, 0), (weight.shape[0] - 1, weight.shape[1] - 1)]:
        numeric = loss_central_difference(learner, batch, labels, forward, weight, index)
        assert abs(numeric) > 1e-8, "a zero derivative would test nothing"
        assert grads["input_to_output"][index] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["rate_cross_entropy", "membrane_cross_entropy"])
def test_bptt_with_direct_input_matches_the_forward_mode_derivative(rng, backend, loss):
    """Through hidden layers (surrogate calculus): the analog input enters the tangent as x dW."""
    params, structure = fc_case(rng, refractory=2 * ms)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(loss=loss), n_threads=2,
                      backend=backend)
    batch = InputBatch.from_samples(intensity_samples(rng, 3), N_STEPS, N_INPUT)
    labels = np.array([2, 0, 1])
    _, grads = learner.gradients(batch, learner.simulate(batch), labels)
    directions = {p.name: rng.normal(size=p.shape) for p in structure.projections}
    backward = sum(float(np.sum(grads[name] * directions[name] * structure.projection(name).exists))
                   for name in grads)
    tangent = tangent_of_loss(learner, batch, labels, directions)
    assert abs(tangent) > 1e-8, "a degenerate (zero) derivative would test nothing"
    assert backward == pytest.approx(tangent, rel=1e-9)


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("data", "needle"), [
    ({"dataset": "nmnist", "encoding": "direct"}, "nmnist accepts ['events', 'frames']"),
    ({"dataset": "mnist", "encoding": "analog"}, "mnist accepts ['poisson', 'direct'] (default 'poisson'), got 'analog'"),
])
def test_direct_encoding_configuration_errors(data, needle):
    with pytest.raises(ConfigError, match="data.encoding") as error:
        ExperimentConfig.from_dict({"data": data})
    assert needle in str(error.value)


def test_direct_input_errors(rng):
    config = ExperimentConfig.from_dict({"data": {"dataset": "cifar10", "encoding": "direct"},
                                         "network": {"hidden_sizes": [5]}})
    assert config.network_parameters().direct_input
    assert not ExperimentConfig.from_dict({"data": {"dataset": "cifar10"}}).network_parameters().direct_input
    with pytest.raises(ValueError, match="NetworkParameters.direct_input: expected True or False"):
        NetworkParameters(direct_input="yes")
    params, structure = fc_case(rng)
    network = SpikingNetwork(structure, params)
    with pytest.raises(ValueError, match="sample 0 is not an intensity vector"):
        network.present([(np.array([1]), np.array([0]))])
    with pytest.raises(ValueError, match="sample 1 has 3 intensities, expected 40"):
        network.present([np.zeros(N_INPUT), np.zeros(3)])
    spiking = NetworkParameters(n_input=N_INPUT, hidden_sizes=(5,), n_output=4, n_steps=N_STEPS)
    with pytest.raises(ValueError, match="got intensity vectors \\(direct encoding\\) for a network whose input is spikes"):
        SpikingNetwork(initial_structure(spiking, rng), spiking).present([np.zeros(N_INPUT)])
    with pytest.raises(ValueError, match="mixes analog samples"):
        InputBatch.from_samples([np.zeros(N_INPUT), (np.array([1]), np.array([0]))], N_STEPS, N_INPUT)
    with pytest.raises(ValueError, match="expected intensity vectors of shape \\(40,\\)"):
        InputBatch.from_samples([np.zeros(7)], N_STEPS, N_INPUT)
    with pytest.raises(ValueError, match="InputBatch.intensities: expected finite values"):
        InputBatch.from_intensities(np.full((1, 3), np.nan), N_STEPS)
    with pytest.raises(ValueError, match="IntensitySamples: expected values of shape"):
        IntensitySamples(np.zeros(4), N_STEPS)


# ---------------------------------------------------------------------------------------- end to end
def test_sdsnn_bio_run_with_direct_encoding_on_generated_mnist(tmp_path, capsys):
    from sdsnn_bio.cli import main

    root = tmp_path / "mnist"
    write_mnist(root, n_train=20, n_test=10)
    config = tmp_path / "direct.toml"
    config.write_text(
        '[data]\ndataset = "mnist"\nencoding = "direct"\ntest_subset = 10\n'
        '[network]\nhidden_sizes = [8]\nn_steps = 8\nweight_init_gain = 2.0\n'
        '[learning]\nbatch_size = 5\nepochs = 1\nthreads = 1\naugment_max_shift = 1\n'
        '[simulation]\ncodegen_target = "numpy"\nevaluation_batch = 5\nevaluation_device = "runtime"\n'
        f'[run]\noutput_dir = "{tmp_path / "out"}"\n'
    )
    assert main(["run", str(config), "--data", str(root), "--quiet"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["data"]["encoding"] == "direct" and results["data"]["input_shape"] == [28, 28, 1]
    model = results["models"]["dense"]
    assert model["test"]["n_samples"] == 10 and model["test"]["kernel_brian2_agreement"] == 1.0
    assert model["test"]["spikes_per_sample"]["hidden_1"] > 0, "the analog input drives the first layer"
    assert "final test accuracy" in capsys.readouterr().out


def test_presets_use_the_released_scripts_encodings():
    """The released MNIST script draws spikes every step (Poisson); the released CIFAR-10 script is direct."""
    from pathlib import Path

    from sdsnn_bio.config import load_config

    presets = Path(__file__).resolve().parents[1] / "examples" / "configs"
    mnist = load_config(presets / "released_mnist_scnn.toml")
    cifar = load_config(presets / "released_cifar10.toml")
    assert mnist.data.encoding == "poisson" and not mnist.network_parameters().direct_input
    assert cifar.data.encoding == "direct" and cifar.network_parameters().direct_input


def test_training_from_brian2_with_direct_input_gives_the_kernels_weights(rng):
    """learning.forward = "brian2": every batch's intensities (shifted by augmentation) go to the Brian2
    input group; its recorded spikes train the same weights as the kernel's forward pass."""
    import copy

    from sdsnn_bio.forward import training_forward
    from sdsnn_bio.learning.augment import batch_shifts

    params, kernel_structure = fc_case(rng, refractory=2 * ms)
    brian_structure = copy.deepcopy(kernel_structure)
    learning = LearningParameters(learning_rate=0.05, logit_scale=5.0)
    kernel = training_forward("kernel", Learner(kernel_structure, params.layer_dynamics(), learning, n_threads=1))
    learner = Learner(brian_structure, params.layer_dynamics(), learning, n_threads=1)
    brian2 = training_forward("brian2", learner, SpikingNetwork(brian_structure, params))
    for index in range(3):
        samples = augment_samples(intensity_samples(rng, 4), batch_shifts(5, 0, index, 4, 1), (5, 4, 2))
        batch = InputBatch.from_samples(samples, N_STEPS, N_INPUT)
        for got, want in zip(batch.samples(), samples):
            np.testing.assert_array_equal(got, want)
        expected = kernel.learner.simulate(batch)
        recorded = brian2.record(batch)
        for name in learner.order:
            assert np.array_equal(recorded[name], expected.traces[name].spikes), f"batch {index}: {name}"
        labels = rng.integers(0, 4, 4)
        assert brian2.train_step(batch, labels).loss == pytest.approx(kernel.train_step(batch, labels).loss, rel=1e-12)
    for mine, theirs in zip(brian_structure.projections, kernel_structure.projections):
        np.testing.assert_allclose(mine.weight, theirs.weight, rtol=0, atol=1e-12, err_msg=mine.name)

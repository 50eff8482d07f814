"""Every registered neuron and synapse model: kernel vs Brian2 spike for spike, backward step vs an
independent forward-mode derivative and vs finite differences, pinned trajectories, and the errors.

The tests are parametrised over ``NEURON_MODELS`` x ``SYNAPSE_MODELS``: a new model is tested by
registering it (and teaching :func:`tangent_of_loss` its tangent).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from brian2 import ms
from conftest import loss_central_difference

from sdsnn_bio.learning.bptt import backward_layer
from sdsnn_bio.learning.fused import numba_available
from sdsnn_bio.learning.kernel import LayerDynamics, integrate_layer
from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.learning.loss import cross_entropy
from sdsnn_bio.learning.stepping import backward_model, integrate_model
from sdsnn_bio.dynamics import ModelDynamics
from sdsnn_bio.learning.surrogate import make_surrogate
from sdsnn_bio.model import (
    NEURON_MODELS,
    SYNAPSE_MODELS,
    NetworkParameters,
    SpikingNetwork,
    initial_structure,
    neuron_model,
    synapse_model,
)

N_INPUT, N_STEPS = 40, 30
MODELS = list(itertools.product(sorted(NEURON_MODELS), sorted(SYNAPSE_MODELS)))
IDS = [f"{n}-{s}" for n, s in MODELS]
#: Constants making each model's own mechanism matter in a 30-step window.
NEURON_CONSTANTS = {"lif": {}, "alif": {"tau_adaptation": 40 * ms, "adaptation_increment": 0.3}}
SYNAPSE_CONSTANTS = {"voltage_jump": {}, "current_exponential": {"tau_synapse": 4 * ms}}
#: Weight gain per synapse model: a current spreads a spike's effect over time, so it needs more.
GAIN = {"voltage_jump": 7.0, "current_exponential": 14.0}


def random_samples(rng, n_samples, n_events=150):
    samples = []
    for _ in range(n_samples):
        key = np.unique(rng.integers(0, N_STEPS, n_events) * N_INPUT + rng.integers(0, N_INPUT, n_events))
        samples.append((key % N_INPUT, key // N_INPUT))
    return samples


def make_case(rng, neuron, synapse, refractory=0 * ms, v_reset=0.0, hidden=(25, 15), prune=True):
    params = NetworkParameters(
        n_input=N_INPUT, hidden_sizes=hidden, n_output=4, n_steps=N_STEPS, weight_init_gain=GAIN[synapse],
        hidden=neuron_model(neuron, refractory=refractory, v_reset=v_reset, **NEURON_CONSTANTS[neuron]),
        output=neuron_model(neuron, refractory=refractory, tau_membrane=10 * ms, **NEURON_CONSTANTS[neuron]),
        synapse=synapse_model(synapse, **SYNAPSE_CONSTANTS[synapse]),
    )
    structure = initial_structure(params, rng)
    if prune:
        structure.population("hidden_1").alive[[2, 5]] = False
        first = structure.projection("input_to_hidden_1")
        first.exists[rng.random(first.shape) < 0.3] = False
    return params, structure


def model_dynamics(params) -> dict:
    """Every layer through the models' own step functions (also for LIF with voltage jumps)."""
    dt = params.dt_seconds
    out = {}
    for name in params.population_names[1:]:
        neuron = params.neuron_parameters(name)
        out[name] = ModelDynamics(neuron.dynamics(dt), params.synapse.dynamics(dt, neuron))
    return out


@pytest.mark.parametrize("refractory, v_reset", [(0 * ms, 0.0), (3 * ms, -0.4)], ids=["plain", "refractory"])
@pytest.mark.parametrize("neuron, synapse", MODELS, ids=IDS)
def test_model_kernel_gives_the_same_spikes_as_brian2(rng, neuron, synapse, refractory, v_reset):
    params, structure = make_case(rng, neuron, synapse, refractory, v_reset)
    samples = random_samples(rng, 4)
    names = params.population_names[1:]
    network = SpikingNetwork(structure, params, record_potentials=names)
    network.present(random_samples(rng, 2))  # the model's state must not leak into the next run
    recording = network.present(samples)
    learner = Learner(structure, model_dynamics(params), LearningParameters(), n_threads=1, backend="numpy")
    batch = InputBatch.from_samples(samples, N_STEPS, N_INPUT)
    forward = learner.simulate(batch)
    total = 0
    for name in names:
        brian_spikes = recording.dense_spikes(name)
        total += brian_spikes.sum()
        assert np.array_equal(brian_spikes, forward.traces[name].spikes), f"{name}: spikes differ"
        np.testing.assert_allclose(forward.traces[name].potential, recording.potentials[name], rtol=0,
                                   atol=1e-12, err_msg=f"{name}: potential differs from the StateMonitor")
    assert total > 100, "the case must actually spike to test anything"
    rebuilt = learner.reconstruct(batch, {name: recording.dense_spikes(name) for name in names})
    for name in names:
        np.testing.assert_allclose(rebuilt.traces[name].potential, recording.potentials[name], rtol=0,
                                   atol=1e-12, err_msg=f"{name}: reconstruction from Brian2's spikes")


@pytest.mark.parametrize("refractory", [0, 2])
def test_lif_step_is_bitwise_the_fast_kernel(rng, refractory):
    """The default model's own step (lif.py) and the learner's fast loop (kernel.py, bptt.py) agree."""
    fast = LayerDynamics(decay=0.9, threshold=1.0, reset=-0.2, refractory_steps=refractory)
    params = NetworkParameters(n_input=N_INPUT, hidden_sizes=(5,), n_output=3, n_steps=N_STEPS)
    stepped = ModelDynamics(neuron_model("lif").dynamics(1e-3).__class__(0.9, 1.0, -0.2, refractory),
                            params.synapse.dynamics(1e-3, params.hidden))
    currents = rng.normal(0.3, 0.6, size=(N_STEPS, 3, 20))
    alive = rng.random(20) > 0.2
    a, b = integrate_layer(currents, fast, alive), integrate_model(stepped, currents, alive)
    assert np.array_equal(a.spikes, b.spikes) and a.spikes.sum() > 20
    assert np.array_equal(a.potential, b.potential), "bit for bit"
    surrogate = make_surrogate("fast_sigmoid")
    grad_spikes, grad_potential = rng.normal(size=currents.shape), rng.normal(size=currents.shape)
    np.testing.assert_allclose(backward_layer(a, fast, surrogate, grad_spikes, grad_potential),
                               backward_model(stepped, b, surrogate, grad_spikes, grad_potential), rtol=1e-13, atol=1e-15)


def test_alif_without_adaptation_is_lif(rng):
    lif = ModelDynamics(neuron_model("lif").dynamics(1e-3), SYNAPSE_MODELS["voltage_jump"]().dynamics(1e-3, None))
    alif = ModelDynamics(neuron_model("alif", adaptation_increment=0.0).dynamics(1e-3), lif.synapse)
    currents = rng.normal(0.3, 0.6, size=(N_STEPS, 3, 20))
    a, b = integrate_model(lif, currents), integrate_model(alif, currents)
    assert np.array_equal(a.spikes, b.spikes) and np.array_equal(a.potential, b.potential)
    adapted = integrate_model(ModelDynamics(neuron_model("alif").dynamics(1e-3), lif.synapse), currents)
    assert adapted.spikes.sum() < a.spikes.sum(), "adaptation lowers the firing"


def tangent_of_loss(learner, batch, labels, directions):
    """Forward-mode derivative of the loss along ``directions`` with the same surrogate calculus, for
    every registered model: an independent implementation (forward in time, no transposes, no use of
    the models' step functions) of what their backward steps compute."""
    structure = learner.structure
    forward = learner.simulate(batch)
    inputs = batch.matrix.toarray().reshape(batch.n_steps, batch.n_samples, -1)
    presynaptic, d_presynaptic = inputs, np.zeros_like(inputs)
    for name in forward.order:
        trace, dyn = forward.traces[name], learner.dynamics[name]
        neuron, synapse = dyn.neuron, dyn.synapse
        adaptive = hasattr(neuron, "adaptation_decay")
        current_based = hasattr(synapse, "coupling")
        projection = structure.projection_into(name)
        d_input = presynaptic @ (directions[projection.name] * projection.exists) \
            + d_presynaptic @ projection.effective_weight()
        d_v, d_a, d_c = (np.zeros(d_input.shape[1:]) for _ in range(3))
        d_spikes, d_potential = np.zeros_like(d_input), np.zeros_like(d_input)
        for t in range(batch.n_steps):
            r = np.ones_like(d_v) if trace.not_refractory is None else trace.not_refractory[t].astype(float)
            d_drive = synapse.coupling * d_c if current_based else 0.0
            d_u = r * (neuron.decay * d_v + d_drive) + (1 - r) * d_v
            d_potential[t] = d_u
            threshold = neuron.threshold
            if adaptive:
                d_a = neuron.adaptation_decay * d_a
                threshold = threshold + trace.records["threshold_adaptation"][t]
            d_s = learner.surrogate.derivative(trace.potential[t] - threshold) * r * (d_u - d_a)
            d_spikes[t] = d_s
            keep = ~trace.spikes[t]
            d_v = keep * (d_u + (0.0 if current_based else r * d_input[t]))
            if adaptive:
                d_a = d_a + neuron.adaptation_increment * d_s
            if current_based:
                d_c = synapse.synapse_decay * d_c + d_input[t]
        presynaptic, d_presynaptic = trace.spikes.astype(float), d_spikes
    scale = learner.params.logit_scale
    counts, mean_potential = learner.readout(forward)
    if learner.params.loss == "rate_cross_entropy":
        _, grad_logits = cross_entropy(scale * counts / batch.n_steps, labels)
        d_logits = scale * d_spikes.sum(axis=0) / batch.n_steps
    else:
        _, grad_logits = cross_entropy(scale * mean_potential, labels)
        d_logits = scale * d_potential.mean(axis=0)
    return float(np.sum(grad_logits * d_logits))


@pytest.mark.parametrize("loss", ["rate_cross_entropy", "membrane_cross_entropy"])
@pytest.mark.parametrize("refractory", [0 * ms, 2 * ms], ids=["plain", "refractory"])
@pytest.mark.parametrize("neuron, synapse", MODELS, ids=IDS)
def test_model_backward_matches_forward_mode_derivative(rng, neuron, synapse, refractory, loss):
    params, structure = make_case(rng, neuron, synapse, refractory, hidden=(18, 12), prune=False)
    learner = Learner(structure, model_dynamics(params), LearningParameters(loss=loss), n_threads=1,
                      backend="numpy")
    batch = InputBatch.from_samples(random_samples(rng, 3), N_STEPS, N_INPUT)
    labels = np.array([2, 0, 1])
    _, grads = learner.gradients(batch, learner.simulate(batch), labels)
    directions = {p.name: rng.normal(size=p.shape) for p in structure.projections}
    backward = sum(float(np.sum(grads[name] * directions[name])) for name in grads)
    forward = tangent_of_loss(learner, batch, labels, directions)
    assert abs(forward) > 1e-8, "a degenerate (zero) derivative would test nothing"
    assert backward == pytest.approx(forward, rel=1e-9)


@pytest.mark.parametrize("neuron, synapse", MODELS, ids=IDS)
def test_model_finite_difference_gradient_of_output_weights(rng, neuron, synapse):
    """Membrane loss: with the spike pattern fixed, dL/dW_out is the exact derivative."""
    params, structure = make_case(rng, neuron, synapse, refractory=2 * ms, hidden=(20,), prune=False)
    learner = Learner(structure, model_dynamics(params),
                      LearningParameters(loss="membrane_cross_entropy", logit_scale=3.0), n_threads=1,
                      backend="numpy")
    batch = InputBatch.from_samples(random_samples(rng, 3), N_STEPS, N_INPUT)
    labels = np.array([0, 1, 3])
    forward = learner.simulate(batch)
    assert forward.output().spikes.any(), "output spikes (and resets, adaptation) are part of the check"
    _, grads = learner.gradients(batch, forward, labels)
    weight = structure.projection("hidden_1_to_output").weight
    for index in [(0, 0), (3, 1), (7, 2), (19, 3), (11, 0)]:
        numeric = loss_central_difference(learner, batch, labels, forward, weight, index)
        assert grads["hidden_1_to_output"][index] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def one_neuron(neuron: str, synapse: str, weight: float, steps, neuron_constants=None,
               synapse_constants=None):
    """Brian2's potential of one neuron fed by one input channel, and its spike steps."""
    params = NetworkParameters(n_input=1, hidden_sizes=(1,), n_output=1, n_steps=10,
                               hidden=neuron_model(neuron, **(neuron_constants or {})),
                               synapse=synapse_model(synapse, **(synapse_constants or {})))
    structure = initial_structure(params, np.random.default_rng(0))
    structure.projection("input_to_hidden_1").weight[:] = weight
    network = SpikingNetwork(structure, params, record_potentials=("hidden_1",))
    steps = np.asarray(steps)
    recording = network.present([(np.zeros(steps.size, dtype=np.int64), steps)])
    return recording.potentials["hidden_1"][:, 0, 0], recording.spikes["hidden_1"][1].tolist()


def test_pinned_alif_trajectory_against_literal_numbers():
    """ALIF, input 0.6 at every step (decay d = exp(-1/20) per step). It fires at step 2 as LIF does;
    the threshold then rises to 1 + 0.3 and decays by a = exp(-1/50) per step, so at step 5 the
    potential 1.1136 stays below 1 + 0.3 a^3 = 1.2825 (LIF fires there), the input of step 5 adds on,
    and the neuron fires at step 6 with u = (1.1136 + 0.6) d = 1.6301 > 1 + 0.3 a^4 = 1.2769."""
    u, spikes = one_neuron("alif", "voltage_jump", 0.6, range(10),
                           neuron_constants={"tau_adaptation": 50 * ms, "adaptation_increment": 0.3})
    expected = [0.0, 0.5707376547004284, 1.1136401055220042, 0.0, 0.5707376547004284, 1.1136401055220042,
                1.630064891377039, 0.0, 0.5707376547004284, 1.1136401055220042]
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-14)
    assert spikes == [2, 6]
    _, lif_spikes = one_neuron("lif", "voltage_jump", 0.6, range(10))
    assert lif_spikes == [2, 5, 8], "without adaptation the neuron fires every third step"


def test_pinned_current_synapse_trajectory_against_literal_numbers():
    """LIF fed through an exponential current (tau_synapse 5 ms), weight 1 at step 0 only. The current
    arrives after the threshold of step 0; from step 1 it drives the membrane:
    u_1 = k = 5/15 (exp(-1/20) - exp(-1/5)) = 0.044166, u_2 = k (exp(-1/20) + exp(-1/5)) = 0.078172;
    the potential keeps rising while the current outweighs the leak, far below the weight."""
    u, spikes = one_neuron("lif", "current_exponential", 1.0, [0], synapse_constants={"tau_synapse": 5 * ms})
    expected = [0.0, 0.04416622380757737, 0.07817245733344007, 0.10396544677701042, 0.12313392965358672,
                0.1369737806333208, 0.1465413362565052, 0.15269704192570227, 0.15614117601366126,
                0.15744308780006222]
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-14)
    assert spikes == []


def test_model_errors_name_the_key_and_the_allowed_values():
    with pytest.raises(ValueError, match=r"network.neuron_model: expected one of \['alif', 'lif'\], got 'izh'"):
        neuron_model("izh")
    with pytest.raises(ValueError, match=r"network.synapse_model: expected one of "
                                         r"\['current_exponential', 'voltage_jump'\], got 'cond'"):
        synapse_model("cond")
    with pytest.raises(ValueError, match=r"AdaptiveNeuronParameters.tau_adaptation: expected a time > 0"):
        neuron_model("alif", tau_adaptation=-1 * ms)
    with pytest.raises(ValueError, match=r"AdaptiveNeuronParameters.adaptation_increment: expected a value"):
        neuron_model("alif", adaptation_increment=-0.1)
    with pytest.raises(ValueError, match=r"unknown constant\(s\) \['tau_adaptation'\]"):
        neuron_model("lif", tau_adaptation=10 * ms)
    with pytest.raises(ValueError, match=r"tau_synapse: expected a time different from the neurons' tau_membrane"):
        NetworkParameters(synapse=synapse_model("current_exponential", tau_synapse=20 * ms))


@pytest.mark.skipif(not numba_available(), reason="Numba is not installed")
@pytest.mark.parametrize("refractory", [0 * ms, 3 * ms], ids=["plain", "refractory"])
@pytest.mark.parametrize("neuron, synapse", MODELS, ids=IDS)
def test_compiled_loops_are_the_numpy_steps(rng, neuron, synapse, refractory):
    """Each model's Numba loops (the "numba" backend) give the NumPy steps' spikes and potentials bit
    for bit, and their backward steps to rounding."""
    params, _ = make_case(rng, neuron, synapse, refractory, v_reset=-0.3, hidden=(20,), prune=False)
    dynamics = model_dynamics(params)["hidden_1"]
    assert dynamics.compilable
    currents = rng.normal(0.25, 0.6, size=(N_STEPS, 3, 20)) * (3.0 if synapse == "current_exponential" else 1.0)
    alive = rng.random(20) > 0.2
    reference = integrate_model(dynamics, currents, alive)
    compiled = integrate_model(dynamics, currents, alive, compiled=True)
    assert reference.spikes.sum() > 50, "the case must spike to test anything"
    for field in ("potential", "spikes", "not_refractory", "spike_counts"):
        assert np.array_equal(getattr(reference, field), getattr(compiled, field)), field
    assert reference.records.keys() == compiled.records.keys()
    for name in reference.records:
        assert np.array_equal(reference.records[name], compiled.records[name]), name
    rebuilt = integrate_model(dynamics, currents, alive, reference.spikes, compiled=True)
    assert np.array_equal(rebuilt.potential, reference.potential), "reconstruction from given spikes"
    surrogate = make_surrogate("fast_sigmoid")
    grad_spikes, grad_potential = rng.normal(size=currents.shape), rng.normal(size=currents.shape)
    for gs, gp in ((grad_spikes, None), (None, grad_potential), (grad_spikes, grad_potential)):
        np.testing.assert_allclose(backward_model(dynamics, compiled, surrogate, gs, gp, compiled=True),
                                   backward_model(dynamics, reference, surrogate, gs, gp), rtol=1e-12, atol=1e-14)


@pytest.mark.skipif(not numba_available(), reason="Numba is not installed")
def test_learner_runs_other_models_compiled_and_keeps_the_fused_kernels_for_the_default():
    def learner(backend):
        params, structure = make_case(np.random.default_rng(5), "alif", "current_exponential", hidden=(14,))
        return Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1, backend=backend)

    compiled, reference = learner("auto"), learner("numpy")
    assert compiled.backend == "numba", "auto: the model's compiled loops when Numba is installed"
    batch = InputBatch.from_samples(random_samples(np.random.default_rng(6), 4), N_STEPS, N_INPUT)
    labels = np.array([0, 1, 2, 3])
    forward_c, forward_r = compiled.simulate(batch), reference.simulate(batch)
    for name in forward_r.order:
        assert np.array_equal(forward_c.traces[name].spikes, forward_r.traces[name].spikes), name
    _, grads_c = compiled.gradients(batch, forward_c, labels)
    _, grads_r = reference.gradients(batch, forward_r, labels)
    for name in grads_r:
        np.testing.assert_allclose(grads_c[name], grads_r[name], rtol=1e-10, atol=1e-13, err_msg=name)
    default, _ = make_case(np.random.default_rng(5), "lif", "voltage_jump", hidden=(5,), prune=False)
    assert all(isinstance(d, LayerDynamics) for d in default.layer_dynamics().values()), \
        "the default model keeps the fused kernels"


def test_a_model_without_compiled_loops_refuses_the_numba_backend(rng):
    params, structure = make_case(rng, "alif", "voltage_jump", hidden=(5,), prune=False)

    class NumpyOnly:  # a model that provides its NumPy step only
        def __init__(self, dynamics):
            self.dynamics = dynamics
            self.compilable = False

        def __getattr__(self, name):
            return getattr(self.dynamics, name)

    dynamics = {name: NumpyOnly(d) for name, d in params.layer_dynamics().items()}
    assert Learner(structure, dynamics, LearningParameters(), n_threads=1).backend == "numpy"
    with pytest.raises(ValueError, match="learning.backend: 'numba' needs compiled loops"):
        Learner(structure, dynamics, LearningParameters(), n_threads=1, backend="numba")


# ---------------------------------------------------------------------------------------- configuration
def test_config_chooses_the_models_with_their_constants_in_units():
    from sdsnn_bio.config import ExperimentConfig

    config = ExperimentConfig.from_dict({"network": {
        "hidden_sizes": [8], "neuron_model": "alif", "tau_adaptation": "150 ms", "adaptation_increment": 0.5,
        "synapse_model": "current_exponential", "tau_synapse": "3 ms"}})
    params = config.network_parameters()
    assert params.neuron_models == ("alif", "alif") and params.synapse.name == "current_exponential"
    assert float(params.hidden.tau_adaptation / ms) == pytest.approx(150.0)
    assert params.output.adaptation_increment == 0.5 and float(params.synapse.tau_synapse / ms) == pytest.approx(3.0)
    echo = config.to_dict()["network"]
    assert echo["neuron_model"] == "alif" and echo["tau_adaptation"] == "150 ms" and echo["tau_synapse"] == "3 ms"
    assert ExperimentConfig.from_dict(config.to_dict()) == config, "the echo reads back"
    default = ExperimentConfig.from_dict({}).to_dict()["network"]
    assert not {"neuron_model", "synapse_model", "tau_adaptation", "adaptation_increment", "tau_synapse"} & set(default), \
        "echoes of default-model configurations are unchanged (resumable)"
    only_alif = ExperimentConfig.from_dict({"network": {"neuron_model": "alif"}}).to_dict()["network"]
    assert "tau_adaptation" in only_alif and "tau_synapse" not in only_alif and "synapse_model" not in only_alif
    in_force, _ = ExperimentConfig.from_dict({}).in_force()
    assert in_force["network"]["neuron_model"] == "lif" and in_force["network"]["tau_synapse"] == "5 ms"


@pytest.mark.parametrize("network, message", [
    ({"neuron_model": "izh"}, r"network.neuron_model: expected one of \['alif', 'lif'\], got 'izh'"),
    ({"synapse_model": "cond"}, r"network.synapse_model: expected one of \['current_exponential', 'voltage_jump'\]"),
    ({"tau_adaptation": "50 ms"}, r"network.tau_adaptation: applies to network.neuron_model = 'alif' only, "
                                  r"but network.neuron_model = 'lif'"),
    ({"tau_synapse": "2 ms"}, r"network.tau_synapse: applies to network.synapse_model = 'current_exponential'"),
    ({"neuron_model": "alif", "tau_adaptation": 50}, r"network.tau_adaptation: expected a time with a unit"),
    ({"neuron_model": "alif", "tau_adaptation": "0 ms"}, r"network.tau_adaptation: expected a time > 0"),
    ({"neuron_model": "alif", "adaptation_increment": -1.0}, r"network.adaptation_increment: expected a value in"),
    ({"synapse_model": "current_exponential", "tau_synapse": "20 ms"},
     r"network.tau_synapse: expected a time different from the neurons' tau_membrane"),
])
def test_config_model_errors_name_the_key(network, message):
    from sdsnn_bio.config import ConfigError, ExperimentConfig

    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_dict({"network": network})


# ---------------------------------------------------------------------------------------- end to end
def test_alif_config_runs_end_to_end_on_the_embedded_dataset(tmp_path, embedded_cache, monkeypatch):
    """examples/configs/alif.toml, smaller: train with development, evaluate in Brian2, draw figures."""
    import json
    from pathlib import Path

    from sdsnn_bio.config import load_config
    from sdsnn_bio.experiment import run_experiment
    from sdsnn_bio.plotting import plot_results

    monkeypatch.setenv("SDSNN_BIO_CACHE", str(embedded_cache))
    path = Path(__file__).resolve().parents[1] / "examples" / "configs" / "alif.toml"
    config = load_config(path).with_overrides([
        "data.train_subset=60", "data.test_subset=20", "data.validation_fraction=0.0",
        "network.hidden_sizes=[16]", "learning.epochs=2", "learning.batch_size=12", "learning.threads=1",
        "development.steps_per_epoch=5.0", "development.consecutive_steps=2",
        "simulation.codegen_target=\"numpy\"", "simulation.evaluation_batch=20",
        f"run.output_dir=\"{tmp_path / 'alif'}\"",
    ])
    assert config.network.neuron_model == "alif", "the example configures the ALIF model"
    results = run_experiment(config, progress=False)
    model = results["models"]["sdsnn"]
    saved = json.loads((tmp_path / "alif" / "results.json").read_text())
    assert saved["config"]["network"]["neuron_model"] == "alif", "the echo names the model in force"
    assert model["test"]["n_samples"] == 20 and model["test"]["kernel_brian2_agreement"] == 1.0, \
        "Brian2 evaluated the ALIF network and the NumPy kernel agrees on every sample"
    assert model["structure"]["synapses_removed_fraction"] > 0, "development pruned the ALIF network"
    figures = plot_results(tmp_path / "alif", tmp_path / "figures")
    names = {p.stem for p in figures}
    assert {"rasters", "pruning", "connectivity", "spine_dynamics"} <= names, sorted(names)
    assert all(p.stat().st_size > 0 for p in figures)


def test_the_lif_record_is_the_layer_record_and_never_reaches_the_fast_loops_as_a_model(rng):
    """One record of the LIF constants: ``LIFDynamics`` adds the model's steps to ``LayerDynamics``
    (same fields, same checks). The learner's fast LIF loops are chosen by the exact type, so a
    model's own record given as a layer's dynamics (ALIF's is a LayerDynamics too) is refused rather
    than run as plain LIF."""
    from dataclasses import fields

    from sdsnn_bio.model.neurons import ALIFDynamics, LIFDynamics

    assert issubclass(LIFDynamics, LayerDynamics) and issubclass(ALIFDynamics, LIFDynamics)
    assert [f.name for f in fields(LIFDynamics)] == [f.name for f in fields(LayerDynamics)]
    with pytest.raises(ValueError, match=r"LIFDynamics.decay: expected a value in \[0, 1\], got 1.5"):
        LIFDynamics(decay=1.5)
    with pytest.raises(ValueError, match="ALIFDynamics.reset: expected a value below threshold=1.0, got 1.0"):
        ALIFDynamics(decay=0.9, reset=1.0)
    params, structure = make_case(rng, "alif", "voltage_jump", hidden=(5,), prune=False)
    records = {name: d.neuron for name, d in params.layer_dynamics().items()}  # ALIFDynamics, unwrapped
    with pytest.raises(ValueError, match=r"dynamics\['hidden_1'\]: got a neuron model's own record "
                                         r"\(ALIFDynamics\); pair it with its synapse record in a ModelDynamics"):
        Learner(structure, records, LearningParameters(), n_threads=1)

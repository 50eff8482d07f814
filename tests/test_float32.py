"""The float32 training path (``learning.dtype = "float32"``).

The learner computes in the type of ``LearningParameters.dtype`` end to end (weights, potentials,
gradients, Adam moments), on both backends and for every neuron and synapse model; Brian2 stays
float64. These tests check the type of every array, that float32 gradients and short training
runs agree with float64 within float32 rounding, the configuration key, checkpoints, and one
development step on float32 weights.

The spike-for-spike equality tests against Brian2 (``tests/test_learning.py``,
``tests/test_neuron_models.py``) keep the default ``dtype = "float64"``: the kernel reproduces
Brian2's potentials bit for bit only in float64, while float32 potentials differ by rounding
(relative ~1e-7) and a potential within rounding of the threshold may then spike differently.
"""

from __future__ import annotations

import numpy as np
import pytest
from brian2 import ms
from conftest import loss_central_difference

from sdsnn_bio.config import ConfigError, ExperimentConfig
from sdsnn_bio.development import DevelopmentActions, DevelopmentParameters, DevelopmentState, develop_structure
from sdsnn_bio.learning.fused import numba_available
from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.learning.stepping import backward_model, integrate_model
from sdsnn_bio.learning.surrogate import make_surrogate
from sdsnn_bio.model import (
    NetworkParameters,
    NeuronParameters,
    SpikingNetwork,
    initial_structure,
    neuron_model,
    synapse_model,
)
from sdsnn_bio.runfolder import read_checkpoint, write_checkpoint
from sdsnn_bio.structure import Projection, SpineState, Structure

N_INPUT, N_STEPS = 40, 30

needs_numba = pytest.mark.skipif(not numba_available(), reason="Numba is not installed")
BACKENDS = ["numpy", pytest.param("numba", marks=needs_numba)]


def random_samples(rng, n_samples, n_events=150):
    samples = []
    for _ in range(n_samples):
        key = np.unique(rng.integers(0, N_STEPS, n_events) * N_INPUT + rng.integers(0, N_INPUT, n_events))
        samples.append((key % N_INPUT, key // N_INPUT))
    return samples


def make_case(rng, refractory=0 * ms, hidden=(25, 15), prune=True):
    params = NetworkParameters(
        n_input=N_INPUT, hidden_sizes=hidden, n_output=4, n_steps=N_STEPS, weight_init_gain=7.0,
        hidden=NeuronParameters(refractory=refractory),
        output=NeuronParameters(refractory=refractory, tau_membrane=10 * ms),
    )
    structure = initial_structure(params, rng)
    if prune:
        structure.population("hidden_1").alive[[2, 5]] = False
        first = structure.projection("input_to_hidden_1")
        first.exists[rng.random(first.shape) < 0.3] = False
    return params, structure


def copy_structure(structure, dtype=None) -> Structure:
    """A deep copy; with ``dtype``, its weights rounded to that type (then stored as float64)."""
    projections = []
    for p in structure.projections:
        copy = p.copy()
        if dtype is not None:
            copy.weight = copy.weight.astype(dtype).astype(np.float64)
        projections.append(copy)
    return Structure(tuple(q.copy() for q in structure.populations), tuple(projections))


def pair(structure, params, backend, **learning):
    """A float32 and a float64 learner on the same weights (rounded to float32 for both)."""
    return {dtype: Learner(copy_structure(structure, np.float32), params.layer_dynamics(),
                           LearningParameters(dtype=dtype, **learning), n_threads=2, backend=backend)
            for dtype in ("float32", "float64")}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("refractory", [0 * ms, 2 * ms], ids=["plain", "refractory"])
def test_a_float32_learner_keeps_every_array_in_float32(rng, backend, refractory):
    params, structure = make_case(rng, refractory)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(dtype="float32"),
                      n_threads=2, backend=backend)
    assert learner.dtype == np.float32
    for projection in structure.projections:
        assert projection.weight.dtype == np.float32, f"{projection.name}: weights converted once"
        assert projection.spine.upper.dtype == np.float64, "spine state stays float64"
    weights = {p.name: p.weight for p in structure.projections}
    batch = InputBatch.from_samples(random_samples(rng, 4), N_STEPS, N_INPUT)
    labels = np.array([0, 1, 2, 3])
    forward = learner.simulate(batch)
    for name, trace in forward.traces.items():
        assert trace.potential.dtype == np.float32, f"{name}: potentials"
    _, grads = learner.gradients(batch, forward, labels)
    for name, grad in grads.items():
        assert grad.dtype == np.float32, f"{name}: gradient"
        assert np.abs(grad).max() > 0, f"{name}: a zero gradient would test nothing"
    learner.train_step(batch, labels)
    first = structure.projection("input_to_hidden_1")
    learner.structure_changed({first.name: ~first.exists})  # restarted entries: per-entry Adam path
    learner.train_step(batch, labels)
    optimizer = learner.optimizer
    for projection in structure.projections:
        assert projection.weight is weights[projection.name], f"{projection.name}: trained in place"
        assert projection.weight.dtype == np.float32
        assert optimizer.first_moment[projection.name].dtype == np.float32
        assert optimizer.second_moment[projection.name].dtype == np.float32
    assert first.name in optimizer.birth_step


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["rate_cross_entropy", "membrane_cross_entropy"])
def test_float32_gradients_agree_with_float64_within_float32_rounding(rng, backend, loss):
    params, structure = make_case(rng, 2 * ms)
    learners = pair(structure, params, backend, loss=loss)
    batch = InputBatch.from_samples(random_samples(rng, 5), N_STEPS, N_INPUT)
    labels = np.array([0, 1, 2, 3, 1])
    forwards = {dtype: learner.simulate(batch) for dtype, learner in learners.items()}
    for name in forwards["float64"].order:
        single, double = forwards["float32"].traces[name], forwards["float64"].traces[name]
        assert double.spikes.sum() > 20, f"{name}: the case must spike to test anything"
        assert np.array_equal(single.spikes, double.spikes), f"{name}: no potential within rounding of threshold"
        np.testing.assert_allclose(single.potential, double.potential, rtol=1e-5, atol=1e-5)
    results = {dtype: learner.gradients(batch, forwards[dtype], labels) for dtype, learner in learners.items()}
    assert results["float32"][0] == pytest.approx(results["float64"][0], rel=1e-5)
    for name, reference in results["float64"][1].items():
        scale = np.abs(reference).max()
        assert scale > 0, name
        np.testing.assert_allclose(results["float32"][1][name], reference, rtol=0, atol=1e-4 * scale,
                                   err_msg=f"{name}: float32 gradient")


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_membrane_gradient_matches_finite_differences_of_float64(rng, backend):
    """dL/dW_out in float32 against central differences of the float64 loss (fixed spike pattern)."""
    params, structure = make_case(rng, hidden=(20,), prune=False)
    learners = pair(structure, params, backend, loss="membrane_cross_entropy", logit_scale=3.0)
    batch = InputBatch.from_samples(random_samples(rng, 3), N_STEPS, N_INPUT)
    labels = np.array([0, 1, 3])
    single = learners["float32"]
    _, grads = single.gradients(batch, single.simulate(batch), labels)
    double = learners["float64"]
    forward = double.simulate(batch)
    weight = double.structure.projection("hidden_1_to_output").weight
    for index in [(0, 0), (3, 1), (7, 2), (19, 3)]:
        numeric = loss_central_difference(double, batch, labels, forward, weight, index)
        assert grads["hidden_1_to_output"][index] == pytest.approx(numeric, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_few_float32_batches_track_float64_and_predict_the_same(rng, backend):
    params, structure = make_case(rng, hidden=(30,), prune=False)
    learners = pair(structure, params, backend, learning_rate=5e-3)
    prototypes = [random_samples(rng, 1, n_events=120)[0] for _ in range(4)]
    batch = InputBatch.from_samples(prototypes * 4, N_STEPS, N_INPUT)
    labels = np.tile(np.arange(4), 4)
    losses = {dtype: [] for dtype in learners}
    for _ in range(8):
        for dtype, learner in learners.items():
            losses[dtype].append(learner.train_step(batch, labels).loss)
    np.testing.assert_allclose(losses["float32"], losses["float64"], rtol=1e-3)
    assert losses["float64"][-1] < losses["float64"][0], "the run must learn to compare anything"
    for projection in learners["float64"].structure.projections:
        single = learners["float32"].structure.projection(projection.name).weight
        moved = np.abs(projection.weight - copy_structure(structure, np.float32).projection(projection.name).weight)
        assert moved.max() > 1e-2, f"{projection.name}: the weights must move"
        # Adam divides by sqrt(v): where a gradient is near 0, rounding can flip its sign and move
        # that weight by up to the learning rate per batch; almost every weight agrees to 1e-4.
        difference = np.abs(single - projection.weight)
        assert np.quantile(difference, 0.98) < 1e-4, f"{projection.name}: weights after 8 batches"
        assert difference.max() < 8 * 5e-3, f"{projection.name}: no weight beyond Adam's reach"
    test = InputBatch.from_samples(prototypes + random_samples(rng, 12, n_events=120), N_STEPS, N_INPUT)
    assert np.array_equal(learners["float32"].evaluate(test), learners["float64"].evaluate(test))


@needs_numba
@pytest.mark.parametrize("neuron, synapse", [("lif", "current_exponential"), ("alif", "voltage_jump"),
                                             ("alif", "current_exponential")])
def test_compiled_model_loops_run_in_float32_like_the_numpy_steps(rng, neuron, synapse):
    constants = {"alif": {"tau_adaptation": 40 * ms, "adaptation_increment": 0.3}, "lif": {}}[neuron]
    synapse_constants = {"current_exponential": {"tau_synapse": 4 * ms}, "voltage_jump": {}}[synapse]
    params = NetworkParameters(
        n_input=N_INPUT, hidden_sizes=(20,), n_output=4, n_steps=N_STEPS,
        hidden=neuron_model(neuron, refractory=3 * ms, v_reset=-0.3, **constants),
        output=neuron_model(neuron, **constants), synapse=synapse_model(synapse, **synapse_constants),
    )
    dynamics = params.layer_dynamics()["hidden_1"]
    currents = rng.normal(0.25, 0.6, size=(N_STEPS, 3, 20)) * (3.0 if synapse == "current_exponential" else 1.0)
    currents = currents.astype(np.float32)
    alive = rng.random(20) > 0.2
    reference = integrate_model(dynamics, currents, alive)
    compiled = integrate_model(dynamics, currents, alive, compiled=True)
    assert reference.spikes.sum() > 50, "the case must spike to test anything"
    for trace in (reference, compiled):
        assert trace.potential.dtype == np.float32
        assert all(values.dtype == np.float32 for values in trace.records.values())
    assert np.array_equal(reference.potential, compiled.potential)
    assert np.array_equal(reference.spikes, compiled.spikes)
    surrogate = make_surrogate("fast_sigmoid")
    grad_spikes = rng.normal(size=currents.shape).astype(np.float32)
    numpy_grad = backward_model(dynamics, reference, surrogate, grad_spikes, None)
    compiled_grad = backward_model(dynamics, compiled, surrogate, grad_spikes, None, compiled=True)
    assert numpy_grad.dtype == compiled_grad.dtype == np.float32
    np.testing.assert_allclose(compiled_grad, numpy_grad, rtol=1e-5, atol=1e-6 * np.abs(numpy_grad).max())


def test_brian2_receives_float64_weights_of_a_float32_structure(rng):
    params, structure = make_case(rng, hidden=(10,), prune=False)
    Learner(structure, params.layer_dynamics(), LearningParameters(dtype="float32"), n_threads=1)
    network = SpikingNetwork(structure, params)
    for projection in structure.projections:
        state = network.read_synapse_state(projection.name)
        assert state["w"].dtype == np.float64
        expected = projection.weight[state["i"], state["j"]]
        assert np.array_equal(state["w"], expected.astype(np.float64)), projection.name


def test_a_development_step_on_float32_weights(rng):
    """Every rule runs on float32 weights; the constraint leaves them float32 and inside their range."""
    params, structure = make_case(rng, hidden=(25, 15), prune=False)
    Learner(structure, params.layer_dynamics(), LearningParameters(dtype="float32"), n_threads=1)
    for projection in structure.projections:  # ranges narrower than the weights: the constraint clips
        projection.spine.upper = np.full(projection.shape, 0.1 + 1e-9)
        projection.spine.lower = np.full(projection.shape, -0.1 - 1e-9)
    development = DevelopmentParameters(consecutive_steps=1)
    state = DevelopmentState.initial(structure, development)
    actions = DevelopmentActions(spines=True, constrain=True, prune=True, regenerate=True)
    new, record, state = develop_structure(structure, actions, development, state)
    clipped = 0
    for projection in new.projections:
        assert projection.weight.dtype == np.float32, projection.name
        present = projection.exists
        if projection.name != new.projections[-1].name:  # the last projection is not constrained
            assert np.all(projection.weight[present] <= projection.spine.upper[present]), projection.name
            assert np.all(projection.weight[present] >= projection.spine.lower[present]), projection.name
        clipped += record.projections[projection.name]["weights_clipped"]
    assert clipped > 0, "the step must clip weights to test the float32 clip"
    removed = sum(record.projections[p.name]["synapses_removed"] for p in new.projections)
    pruned = sum(len(record.populations[p.name]["pruned"]) for p in new.hidden_populations)
    assert removed + pruned > 0, "the step must change the structure"


def test_clipping_float32_weights_rounds_into_the_range():
    upper = np.array([[0.1, 0.3]])  # not float32 numbers
    weight = np.array([[0.5, -0.5]], dtype=np.float32)
    spine = SpineState.from_weights(np.zeros((1, 2)))
    spine.upper, spine.lower = upper.copy(), -upper.copy()
    projection = Projection("a_to_b", "a", "b", weight, np.ones((1, 2), bool), spine)
    assert projection.weight.dtype == np.float32, "float32 weights stay float32"
    from sdsnn_bio.development.rules import constrain_weights

    new, count = constrain_weights(projection.weight, projection.exists, spine)
    assert count == 2
    flat = new.astype(np.float32)
    assert np.all(flat <= upper) and np.all(flat >= -upper)
    assert flat[0, 0] == np.nextafter(np.float32(0.1), np.float32(0)) or flat[0, 0] == np.float32(0.1)


def test_checkpoint_round_trip_keeps_float32(rng, tmp_path):
    from sdsnn_bio.experiment import _restore_checkpoint

    params, structure = make_case(rng)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(dtype="float32"), n_threads=1)
    batch = InputBatch.from_samples(random_samples(rng, 4), N_STEPS, N_INPUT)
    labels = np.array([0, 1, 2, 3])
    learner.train_step(batch, labels)
    first = structure.projection("input_to_hidden_1")
    learner.structure_changed({first.name: ~first.exists})
    config = ExperimentConfig.from_dict({"learning": {"dtype": "float32"}}).to_dict()
    fingerprint = {split: {"recordings": 0, "sha256": ""} for split in ("train", "validation", "test")}
    path = write_checkpoint(tmp_path / "checkpoint.npz", structure, learner.optimizer.state_arrays(),
                            {"config": config, "data_fingerprint": fingerprint})
    stored = read_checkpoint(path).arrays
    weights = [key for key in stored if key.endswith("input_to_hidden_1/weight")]
    assert len(weights) == 1 and stored[weights[0]].dtype == np.float32, "stored as float32 (exact)"
    _, fresh = make_case(np.random.default_rng(99))
    resumed = Learner(fresh, params.layer_dynamics(), LearningParameters(dtype="float32"), n_threads=1)
    _restore_checkpoint(path, config, fingerprint, fresh, resumed)
    for mine, theirs in zip(fresh.projections, structure.projections):
        assert mine.weight.dtype == np.float32 and np.array_equal(mine.weight, theirs.weight), mine.name
        for moments in ("first_moment", "second_moment"):
            restored = getattr(resumed.optimizer, moments)[mine.name]
            assert restored.dtype == np.float32, f"{mine.name}: {moments}"
            assert np.array_equal(restored, getattr(learner.optimizer, moments)[mine.name])
    learner.train_step(batch, labels)
    resumed.train_step(batch, labels)
    for mine, theirs in zip(fresh.projections, structure.projections):
        assert np.array_equal(mine.weight, theirs.weight), f"{mine.name}: resumed step differs"


def test_config_key_learning_dtype():
    single = ExperimentConfig.from_dict({"learning": {"dtype": "float32"}})
    assert single.learning_parameters().dtype == "float32"
    assert single.to_dict()["learning"]["dtype"] == "float32"
    default = ExperimentConfig.from_dict({})
    assert default.learning_parameters().dtype == "float64"
    assert "dtype" not in default.to_dict()["learning"], "echoes of default configurations unchanged"
    assert default.in_force()[0]["learning"]["dtype"] == "float64"
    assert ExperimentConfig.from_dict({}).with_overrides(['learning.dtype="float32"']).learning.dtype == "float32"
    with pytest.raises(ConfigError, match=r"learning\.dtype: expected one of \['float64', 'float32'\], got 'float16'"):
        ExperimentConfig.from_dict({"learning": {"dtype": "float16"}})
    with pytest.raises(ConfigError, match=r"learning\.dtype: expected a string, got 32"):
        ExperimentConfig.from_dict({"learning": {"dtype": 32}})
    with pytest.raises(ValueError, match=r"learning\.dtype: expected one of"):
        LearningParameters(dtype="double")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_convolutional_network_trains_in_float32(rng, backend):
    """Shared (convolutional) projections: the geometry's products ("numpy") and the compiled
    event-driven kernels ("numba") run in float32 too."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_geometry import N_STEPS as CONV_STEPS
    from test_geometry import conv_case
    from test_geometry import random_samples as conv_samples

    params, structure = conv_case(rng, prune=True)
    learners = {dtype: Learner(copy_structure(structure, np.float32), params.layer_dynamics(),
                               LearningParameters(dtype=dtype), n_threads=2, backend=backend)
                for dtype in ("float32", "float64")}
    assert learners["float32"].backend == backend
    batch = InputBatch.from_samples(conv_samples(rng, 3), CONV_STEPS, params.n_input)
    labels = np.arange(3) % params.n_output
    results = {}
    for dtype, learner in learners.items():
        forward = learner.simulate(batch)
        results[dtype] = forward, learner.gradients(batch, forward, labels)[1]
    for name, trace in results["float32"][0].traces.items():
        assert trace.potential.dtype == np.float32, name
        assert np.array_equal(trace.spikes, results["float64"][0].traces[name].spikes), name
    for name, reference in results["float64"][1].items():
        single = results["float32"][1][name]
        assert single.dtype == np.float32, name
        scale = np.abs(reference).max()
        assert scale > 0, name
        np.testing.assert_allclose(single, reference, rtol=0, atol=1e-4 * scale, err_msg=name)
    learners["float32"].train_step(batch, labels)
    for projection in learners["float32"].structure.projections:
        assert projection.weight.dtype == np.float32, projection.name
        assert learners["float32"].optimizer.first_moment[projection.name].dtype == np.float32


def test_a_float32_learner_trains_from_brian2_recordings(rng):
    """``learning.forward = "brian2"``: Brian2 (float64) simulates the float32 weights; the float32
    learner reconstructs its potentials from those spikes and trains as a float64 learner would."""
    from sdsnn_bio.forward import training_forward

    params, structure = make_case(rng, hidden=(20,))
    forwards, steps = {}, {}
    for dtype in ("float32", "float64"):
        copy = copy_structure(structure, np.float32)
        learner = Learner(copy, params.layer_dynamics(), LearningParameters(dtype=dtype, learning_rate=0.05),
                          n_threads=1, backend="numpy")
        forwards[dtype] = training_forward("brian2", learner, SpikingNetwork(copy, params))
    for index in range(2):
        batch = InputBatch.from_samples(random_samples(rng, 4), N_STEPS, N_INPUT)
        labels = rng.integers(0, 4, 4)
        for dtype, forward in forwards.items():
            steps[dtype] = forward.train_step(batch, labels)
        assert steps["float32"].spike_counts == steps["float64"].spike_counts, f"batch {index}: Brian2's spikes"
        assert sum(steps["float64"].spike_counts.values()) > 50, "the case must spike to test anything"
        assert steps["float32"].loss == pytest.approx(steps["float64"].loss, rel=1e-5)
    for projection in forwards["float64"].learner.structure.projections:
        single = forwards["float32"].learner.structure.projection(projection.name).weight
        assert single.dtype == np.float32, projection.name
        assert np.quantile(np.abs(single - projection.weight), 0.98) < 1e-4, projection.name


@pytest.mark.parametrize("backend", BACKENDS)
def test_direct_analog_input_trains_in_float32(rng, backend):
    """Direct encoding: the first layer's ``x W`` and ``x^T sum_t dL/dJ`` run in float32 too."""
    params, structure = make_case(rng, hidden=(25,), prune=False)
    learners = pair(structure, params, backend)
    batch = InputBatch.from_intensities(rng.random((4, N_INPUT)) * 0.3, N_STEPS)
    labels = np.array([0, 1, 2, 3])
    results = {}
    for dtype, learner in learners.items():
        forward = learner.simulate(batch)
        results[dtype] = forward, learner.gradients(batch, forward, labels)[1]
    for name, trace in results["float32"][0].traces.items():
        assert trace.potential.dtype == np.float32, name
        assert np.array_equal(trace.spikes, results["float64"][0].traces[name].spikes), name
    assert sum(t.spikes.sum() for t in results["float64"][0].traces.values()) > 20, "the case must spike"
    for name, reference in results["float64"][1].items():
        single = results["float32"][1][name]
        assert single.dtype == np.float32, name
        scale = np.abs(reference).max()
        assert scale > 0, name
        np.testing.assert_allclose(single, reference, rtol=0, atol=1e-4 * scale, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_float64_evaluator_simulates_the_float32_weights_exactly(rng, backend):
    params, structure = make_case(rng)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(dtype="float32"), n_threads=1,
                      backend=backend)
    assert learner.evaluator("float32") is learner
    evaluator = learner.evaluator("float64")
    assert evaluator.dtype == np.float64 and evaluator.backend == learner.backend
    for mine, theirs in zip(evaluator.structure.projections, structure.projections):
        assert theirs.weight.dtype == np.float32, f"{theirs.name}: the learner keeps float32"
        assert mine.weight.dtype == np.float64 and np.array_equal(mine.weight, theirs.weight), mine.name
        assert mine.exists is theirs.exists, f"{mine.name}: masks shared, not copied"
    batch = InputBatch.from_samples(random_samples(rng, 6), N_STEPS, N_INPUT)
    reference = Learner(copy_structure(structure), params.layer_dynamics(), LearningParameters(dtype="float64"),
                        n_threads=1, backend=backend)
    trace, expected = evaluator.simulate(batch).traces, reference.simulate(batch).traces
    assert set(trace) == set(expected) == {"hidden_1", "hidden_2", "output"}
    for name in trace:
        assert trace[name].potential.dtype == np.float64, name
        assert np.array_equal(trace[name].spikes, expected[name].spikes), name
        assert np.array_equal(trace[name].potential, expected[name].potential), name
    assert np.array_equal(evaluator.evaluate(batch), reference.evaluate(batch))

"""The C++ standalone evaluation: spike for spike the runtime network of record and the kernel.

One small project directory is compiled once for the module (a cold C++ build takes tens of seconds
here); every test reuses it, and a test with other connectivity recompiles only the files that
changed.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from brian2 import ms

from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.model import NetworkParameters, NeuronParameters, SpikingNetwork, initial_structure
from sdsnn_bio.model.standalone import present_standalone

N_INPUT, N_STEPS = 40, 12

pytestmark = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                reason="Brian2's C++ standalone device needs a C++ compiler")


def random_samples(rng, n_samples, n_events=120):
    samples = []
    for _ in range(n_samples):
        key = np.unique(rng.integers(0, N_STEPS, n_events) * N_INPUT + rng.integers(0, N_INPUT, n_events))
        samples.append((key % N_INPUT, key // N_INPUT))
    return samples


def make_case(rng):
    """Two hidden layers, a refractory period, a negative reset, pruned neurons and synapses."""
    params = NetworkParameters(
        n_input=N_INPUT, hidden_sizes=(25, 15), n_output=4, dt=1 * ms, n_steps=N_STEPS,
        weight_init_gain=7.0,
        hidden=NeuronParameters(refractory=2 * ms, v_reset=-0.4),
        output=NeuronParameters(tau_membrane=10 * ms),
    )
    structure = initial_structure(params, rng)
    structure.population("hidden_1").alive[[2, 5]] = False
    first = structure.projection("input_to_hidden_1")
    first.exists[rng.random(first.shape) < 0.3] = False
    return params, structure


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return tmp_path_factory.mktemp("cpp_standalone")


def assert_same(recording, reference, names, atol=1e-12):
    for name in names:
        assert np.array_equal(recording.dense_spikes(name), reference.dense_spikes(name)), f"{name}: spikes differ"
    for name in reference.potentials:
        np.testing.assert_allclose(recording.potentials[name], reference.potentials[name], rtol=0, atol=atol,
                                   err_msg=f"{name}: potential differs")


def test_standalone_batches_equal_the_runtime_network_and_the_kernel(project):
    rng = np.random.default_rng(7)
    params, structure = make_case(rng)
    # 7 samples in batches of 3: the last batch is completed with empty windows, and its input
    # (fewer spikes) is padded to the size of the largest batch.
    samples = random_samples(rng, 7)
    samples[4] = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))  # a silent sample too
    names = params.population_names[1:]
    recordings, compiled = [], []
    for recording in present_standalone(structure, params, samples, batch_size=3, directory=project,
                                        record_potentials=names):
        recordings.append(recording)
        compiled.append({path.name: path.stat().st_mtime_ns for path in project.rglob("*.o")})
    assert [r.n_samples for r in recordings] == [3, 3, 1]
    assert compiled[0] and compiled[0] == compiled[1] == compiled[2], \
        "the batches after the first reuse the compiled program (same code, new data files)"

    network = SpikingNetwork(structure, params, record_potentials=names)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1, backend="numpy")
    total = 0
    for k, recording in enumerate(recordings):
        batch = samples[3 * k:3 * k + 3]
        assert_same(recording, network.present(batch), ("input",) + names)  # padding spikes never emitted
        forward = learner.simulate(InputBatch.from_samples(batch, N_STEPS, N_INPUT))
        for name in names:
            assert np.array_equal(recording.dense_spikes(name), forward.traces[name].spikes), f"{name}: kernel"
            total += int(recording.dense_spikes(name).sum())
    assert total > 100, "the case must actually spike to test anything"
    assert not (project / "static_arrays").exists() and not (project / "results").exists(), \
        "the data files of the last batch are removed"


def test_pruned_synapses_are_absent_after_a_rebuild(project):
    """Other connectivity (more synapses pruned, a neuron revived) is compiled anew and still matches."""
    rng = np.random.default_rng(8)
    params, structure = make_case(rng)
    samples = random_samples(rng, 4)
    names = params.population_names[1:]
    first = structure.projection("input_to_hidden_1")
    first.exists[:, :10] = False  # every synapse onto hidden neurons 0-9 pruned
    structure.population("hidden_1").alive[2] = True
    # The runtime network first, as in ``run``: its objects, alive beside the standalone ones, share
    # their names.
    reference = SpikingNetwork(structure, params, record_potentials=names).present(samples)
    (recording,) = present_standalone(structure, params, samples, batch_size=4, directory=project,
                                      record_potentials=names)
    assert_same(recording, reference, names)
    hidden = recording.dense_spikes("hidden_1")
    assert not hidden[:, :, :10].any(), "neurons whose input synapses were all pruned never fire"
    assert hidden.any()


@pytest.mark.slow  # its input group changes objects.h: every file recompiles (~170 s here, loaded machine)
def test_direct_input_in_standalone_equals_the_runtime_network_and_the_kernel(project):
    """Direct (analog) input: the input group's TimedArray is padded with zero rows to the same number
    of windows, so both batches run one compiled program; spikes as the runtime network's and the kernel's.

    Slow: ``pytest -m slow tests/test_standalone.py``."""
    rng = np.random.default_rng(9)
    params = NetworkParameters(
        n_input=N_INPUT, hidden_sizes=(25, 15), n_output=4, dt=1 * ms, n_steps=N_STEPS, weight_init_gain=3.0,
        hidden=NeuronParameters(refractory=2 * ms), output=NeuronParameters(tau_membrane=10 * ms),
        direct_input=True,
    )
    structure = initial_structure(params, rng)
    samples = [np.where(rng.random(N_INPUT) < 0.5, rng.random(N_INPUT), 0.0) for _ in range(5)]
    names = params.population_names[1:]
    recordings, compiled = [], []
    for recording in present_standalone(structure, params, samples, batch_size=3, directory=project,
                                        record_potentials=names):
        recordings.append(recording)
        compiled.append({path.name: path.stat().st_mtime_ns for path in project.rglob("*.o")})
    assert [r.n_samples for r in recordings] == [3, 2] and compiled[0] == compiled[1], "compiled once"
    network = SpikingNetwork(structure, params, record_potentials=names)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1, backend="numpy")
    total = 0
    for recording, batch in zip(recordings, (samples[:3], samples[3:])):
        assert_same(recording, network.present(batch), ("input",) + names)
        forward = learner.simulate(InputBatch.from_samples(batch, N_STEPS, N_INPUT))
        for name in names:
            assert np.array_equal(recording.dense_spikes(name), forward.traces[name].spikes), f"{name}: kernel"
            total += int(recording.dense_spikes(name).sum())
    assert total > 50, "the case must actually spike to test anything"


def test_present_standalone_rejects_bad_arguments(tmp_path):
    params, structure = make_case(np.random.default_rng(0))
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1, got 0"):
        next(present_standalone(structure, params, random_samples(np.random.default_rng(0), 1),
                                batch_size=0, directory=tmp_path))
    with pytest.raises(ValueError, match="expected at least one sample"):
        next(present_standalone(structure, params, [], batch_size=2, directory=tmp_path))


@pytest.mark.slow  # a project of its own: a cold C++ build (~200 s here, loaded machine)
def test_conv_network_compiles_and_equals_the_runtime_network_and_the_kernel(tmp_path):
    """A convolutional network (shared kernels, folded pooling, a pruned channel, absent kernel
    elements) runs on the C++ standalone device spike for spike as on the runtime device and in
    the learner's kernel (kernel_index is written, never read back before the run)."""
    rng = np.random.default_rng(9)
    params = NetworkParameters.from_layers(
        ["3C3", "AP2", "4C3", "AP2", "12FC"], (2, 4, 5), 4, n_steps=N_STEPS, dt=1 * ms,
        weight_init_gain=6.0, hidden=NeuronParameters(refractory=0 * ms),
        output=NeuronParameters(tau_membrane=10 * ms),
    )
    structure = initial_structure(params, rng)
    structure.population("hidden_2").alive[1] = False
    second = structure.projection("hidden_1_to_hidden_2")
    second.exists[rng.random(second.shape) < 0.2] = False
    samples = random_samples(rng, 3)
    names = params.population_names[1:]
    reference = SpikingNetwork(structure, params, record_potentials=names).present(samples)
    (recording,) = present_standalone(structure, params, samples, batch_size=3, directory=tmp_path,
                                      record_potentials=names)
    assert_same(recording, reference, names)
    forward = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1).simulate(
        InputBatch.from_samples(samples, N_STEPS, N_INPUT))
    for name in names:
        assert np.array_equal(recording.dense_spikes(name), forward.traces[name].spikes), f"{name}: kernel"
    assert recording.dense_spikes("hidden_1").any() and recording.dense_spikes("hidden_2").any()

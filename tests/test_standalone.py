"""The C++ standalone evaluation: spike for spike the runtime network of record and the kernel.

One small project directory is compiled once for the module (a cold C++ build takes tens of seconds
here); every test reuses it, and a test with other connectivity recompiles only the files that
changed.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from brian2 import ms

from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.model import (
    NetworkParameters,
    NeuronParameters,
    SpikingNetwork,
    initial_structure,
    neuron_model,
    synapse_model,
)
from sdsnn_bio.model.standalone import _standalone_device, present_standalone

N_INPUT, N_STEPS = 40, 12

pytestmark = [pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                 reason="Brian2's C++ standalone device needs a C++ compiler"),
              # One pytest-xdist worker builds the module's C++ project once (a cold build takes tens of seconds).
              pytest.mark.xdist_group("standalone")]


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


#: Neuron model, synapse model, their constants, and the weight gain that makes every layer spike.
OTHER_MODELS = {
    "alif-voltage_jump": ("alif", "voltage_jump", {"tau_adaptation": 40 * ms, "adaptation_increment": 0.3}, {}, 7.0),
    "lif-current_exponential": ("lif", "current_exponential", {}, {"tau_synapse": 4 * ms}, 14.0),
}


def other_model_case(rng, model):
    """make_case's network and pruning with another neuron or synapse model."""
    neuron, synapse, neuron_constants, synapse_constants, gain = OTHER_MODELS[model]
    params = NetworkParameters(
        n_input=N_INPUT, hidden_sizes=(25, 15), n_output=4, dt=1 * ms, n_steps=N_STEPS, weight_init_gain=gain,
        hidden=neuron_model(neuron, refractory=2 * ms, v_reset=-0.4, **neuron_constants),
        output=neuron_model(neuron, tau_membrane=10 * ms, **neuron_constants),
        synapse=synapse_model(synapse, **synapse_constants),
    )
    structure = initial_structure(params, rng)
    structure.population("hidden_1").alive[[2, 5]] = False
    first = structure.projection("input_to_hidden_1")
    first.exists[rng.random(first.shape) < 0.3] = False
    return params, structure


@pytest.mark.slow  # a project of its own: new neuron variables change objects.h, a cold C++ build each
@pytest.mark.parametrize("model", list(OTHER_MODELS))
def test_other_neuron_and_synapse_models_equal_the_runtime_network_and_the_kernel(tmp_path, model):
    """ALIF neurons (threshold adaptation, its sample reset) and current-based synapses (a decaying
    current in the neurons, reset per sample) in the compiled program: two batches (the second
    completed with an empty window), spike for spike as the runtime network and the kernel, potentials
    to 1e-12. Slow: ``pytest -m slow tests/test_standalone.py``."""
    rng = np.random.default_rng(10)
    params, structure = other_model_case(rng, model)
    samples = random_samples(rng, 5)
    names = params.population_names[1:]
    recordings = list(present_standalone(structure, params, samples, batch_size=3, directory=tmp_path,
                                         record_potentials=names))
    assert [r.n_samples for r in recordings] == [3, 2]
    network = SpikingNetwork(structure, params, record_potentials=names)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1, backend="numpy")
    totals = dict.fromkeys(names, 0)
    for recording, batch in zip(recordings, (samples[:3], samples[3:])):
        assert_same(recording, network.present(batch), ("input",) + names)
        forward = learner.simulate(InputBatch.from_samples(batch, N_STEPS, N_INPUT))
        for name in names:
            assert np.array_equal(recording.dense_spikes(name), forward.traces[name].spikes), f"{name}: kernel"
            totals[name] += int(recording.dense_spikes(name).sum())
    assert all(total > 5 for total in totals.values()), f"every layer must spike to test anything: {totals}"


def test_generated_program_holds_the_models_and_the_structure(tmp_path):
    """Default-suite cover of what the slow builds test: the C++ project that ``present_standalone``
    compiles, generated for a conv net of ALIF neurons and current-based synapses (code only, no
    compiler run), carries the models' equations (threshold adaptation in the threshold, reset,
    state update and sample reset; the synaptic current in the state update, sample reset and
    every projection's on_pre) and the structure's data (each shared synapse's kernel element and
    its weight times the pooling factor, the existing pairs only)."""
    from brian2 import device

    rng = np.random.default_rng(11)
    params = NetworkParameters.from_layers(
        ["3C3", "AP2", "4C3", "AP2", "12FC"], (2, 4, 5), 4, n_steps=N_STEPS, dt=1 * ms,
        hidden=neuron_model("alif", refractory=1 * ms), output=neuron_model("alif", tau_membrane=10 * ms),
        synapse=synapse_model("current_exponential"),
    )
    structure = initial_structure(params, rng)
    second = structure.projection("hidden_1_to_hidden_2")
    second.exists[rng.random(second.shape) < 0.2] = False
    with _standalone_device(tmp_path):
        network = SpikingNetwork(structure, params, spine_state=False)
        network.network.run(N_STEPS * ms, namespace={})
        device.build(directory=str(tmp_path), compile=False, run=False, with_output=False)
        del network
    code = tmp_path / "code_objects"

    def source(name):
        return (code / f"{name}_codeobject.cpp").read_text()

    for name in params.population_names[1:]:
        assert "threshold_adaptation" in source(f"{name}_spike_thresholder"), f"{name}: ALIF threshold"
        assert "threshold_adaptation" in source(f"{name}_spike_resetter"), f"{name}: ALIF reset"
        for variable in ("threshold_adaptation", "synaptic_current"):
            assert variable in source(f"{name}_stateupdater"), f"{name}: {variable} integrated"
            assert f"{variable} = 0;" in source(f"{name}_sample_reset"), f"{name}: {variable} reset per sample"
    static = tmp_path / "static_arrays"

    objects = (tmp_path / "objects.cpp").read_text()
    c_types = {"double": np.float64, "int32_t": np.int32, "int64_t": np.int64}

    def data(projection, variable):
        """The values the program loads into ``variable``: a raw binary file of the C type it declares."""
        array = {"w": "dynamic_array_{}_w", "kernel_index": "dynamic_array_{}_kernel_index",
                 "_synaptic_pre": "array_{}_sources", "_synaptic_post": "array_{}_targets"}[variable]
        name = f"_static_array__{array.format(projection)}"
        (c_type,) = re.findall(rf"^(\w+) \* {name};$", objects, flags=re.MULTILINE)
        return np.fromfile(static / name, dtype=c_types[c_type])

    for projection in structure.projections:
        name = projection.name
        assert "synaptic_current" in source(f"{name}_pre"), f"{name}: on_pre drives the current"
        if projection.geometry is None:  # the fully-connected output projection: one weight per pair
            pre, post = data(name, "_synaptic_pre"), data(name, "_synaptic_post")
            np.testing.assert_array_equal(data(name, "w"), projection.weight[pre, post], err_msg=name)
            continue
        listed = projection.geometry.synapses()
        present = projection.exists.ravel()[listed.parameter_index]
        kernel_index = data(name, "kernel_index")
        np.testing.assert_array_equal(kernel_index, listed.parameter_index[present], err_msg=name)
        np.testing.assert_array_equal(data(name, "w"), projection.weight.ravel()[kernel_index] * listed.factor,
                                      err_msg=name)
        np.testing.assert_array_equal(data(name, "_synaptic_pre"), listed.pre[present], err_msg=name)
        if name == second.name:
            assert present.sum() < present.size, "absent kernel elements have no synapses"

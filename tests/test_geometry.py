"""Convolutional and pooled projections: shared parameters in Brian2, the learner and development.

Tiny networks (8x8 inputs, 2-4 channels) keep every test at a few seconds on Brian2's numpy target.
"""

from __future__ import annotations

import numpy as np
import pytest
from brian2 import ms
from conftest import loss_central_difference

from sdsnn_bio.development.rules import (
    DevelopmentParameters,
    DevelopmentState,
    develop_structure,
    neuron_importance,
)
from sdsnn_bio.development.schedule import DevelopmentActions
from sdsnn_bio.dynamics import LayerDynamics
from sdsnn_bio.geometry import Geometry
from sdsnn_bio.learning.bptt import backward_layer
from sdsnn_bio.learning.fused import numba_available
from sdsnn_bio.learning.kernel import LayerTrace, integrate_layer
from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.learning.parallel import RowBlocks
from sdsnn_bio.learning.surrogate import make_surrogate
from sdsnn_bio.model import NetworkParameters, NeuronParameters, SpikingNetwork, initial_structure
from sdsnn_bio.model.architecture import parse_layers
from sdsnn_bio.model.equations import shared_synapse_equations
from sdsnn_bio.structure import Population, Projection, SpineState, Structure

INPUT_SHAPE = (2, 8, 8)
N_INPUT = 128
N_STEPS = 20
LAYERS = ["3C3", "AP2", "4C3", "AP2", "12FC"]

needs_numba = pytest.mark.skipif(not numba_available(), reason="Numba is not installed")
#: "numpy": geometry products (im2col, BLAS) and NumPy loops; "numba": the compiled, event-driven
#: shared kernels (sdsnn_bio.learning.shared).
BACKENDS = ["numpy", pytest.param("numba", marks=needs_numba)]

GEOMETRIES = [
    Geometry("convolution", (2, 8, 8), 3, kernel_size=3, padding=1),
    Geometry("convolution", (3, 9, 9), 2, kernel_size=3, padding=0, pool=2),
    Geometry("convolution", (2, 7, 6), 2, kernel_size=2, padding=1, pool=3),
    Geometry("dense", (3, 9, 9), 5, pool=2),
    Geometry("dense", (2, 4, 4), 5),
]


def unrolled(geometry: Geometry, weight: np.ndarray) -> np.ndarray:
    """One weight per synapse, ``(n_source, n_target)``, from the listed synapses."""
    listed = geometry.synapses()
    matrix = np.zeros((geometry.n_source, geometry.n_target))
    np.add.at(matrix, (listed.pre, listed.post), weight.ravel()[listed.parameter_index] * listed.factor)
    return matrix


def random_samples(rng, n_samples, n_events=220, n_input=N_INPUT, n_steps=N_STEPS):
    samples = []
    for _ in range(n_samples):
        key = np.unique(rng.integers(0, n_steps, n_events) * n_input + rng.integers(0, n_input, n_events))
        samples.append((key % n_input, key // n_input))
    return samples


def conv_case(rng, refractory=1 * ms, prune=True):
    params = NetworkParameters.from_layers(
        LAYERS, INPUT_SHAPE, 4, n_steps=N_STEPS, weight_init_gain=5.0,
        hidden=NeuronParameters(refractory=refractory),
        output=NeuronParameters(tau_membrane=10 * ms),
    )
    structure = initial_structure(params, rng)
    if prune:
        structure.population("hidden_2").alive[1] = False  # a pruned channel: 16 silent neurons
        second = structure.projection("hidden_1_to_hidden_2")
        second.exists[rng.random(second.shape) < 0.2] = False  # absent kernel elements
    return params, structure


# ---------------------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"{g.kind}-pool{g.pool}-k{g.kernel_size}")
def test_forward_and_backward_are_those_of_the_listed_synapses(rng, geometry):
    """The operator the learner uses equals the synapses Brian2 is built from: currents are the
    unrolled matrix product, the parameter gradient is the sum over the synapses sharing it."""
    listed = geometry.synapses()
    assert len(set(zip(listed.pre.tolist(), listed.post.tolist()))) == listed.pre.size, "duplicate pairs"
    assert np.all(np.diff(listed.pre) >= 0), "sorted by presynaptic neuron"
    weight = rng.normal(size=geometry.parameter_shape)
    spikes = (rng.random((5, geometry.n_source)) < 0.3).astype(float)
    matrix = unrolled(geometry, weight)
    np.testing.assert_allclose(geometry.forward(spikes, weight), spikes @ matrix, rtol=0, atol=1e-12)
    grad_currents = rng.normal(size=(5, geometry.n_target))
    grad_weight, grad_spikes = geometry.backward(spikes, grad_currents, weight)
    per_synapse = (spikes.T @ grad_currents)[listed.pre, listed.post] * listed.factor
    summed = np.bincount(listed.parameter_index, per_synapse, minlength=weight.size)
    np.testing.assert_allclose(grad_weight.ravel(), summed, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_spikes, grad_currents @ matrix.T, rtol=1e-12, atol=1e-12)
    assert geometry.row_channel().shape == (geometry.parameter_shape[0],)
    assert geometry.n_synapses == listed.pre.size


@pytest.mark.parametrize("geometry", GEOMETRIES[:3], ids=lambda g: f"pool{g.pool}-k{g.kernel_size}")
def test_bool_spikes_and_sample_blocks_give_the_same_operator(rng, geometry, monkeypatch):
    """The learner passes a layer's bool spikes as they are, and a convolution takes the samples in
    blocks: the currents and gradients are those of float spikes in one block."""
    weight = rng.normal(size=geometry.parameter_shape)
    spikes = rng.random((7, geometry.n_source)) < 0.3
    grad_currents = rng.normal(size=(7, geometry.n_target))
    whole = geometry.forward(spikes.astype(float), weight)
    whole_grads = geometry.backward(spikes.astype(float), grad_currents, weight)
    per_sample = geometry.parameter_shape[0] * int(np.prod(geometry.target_shape[1:])) * 8
    monkeypatch.setattr("sdsnn_bio.geometry._CHUNK_BYTES", 3 * per_sample)  # blocks of 3, 3, 1
    assert [b - a for a, b in geometry._chunks(7)] == [3, 3, 1]
    np.testing.assert_allclose(geometry.forward(spikes, weight), whole, rtol=0, atol=1e-12)
    for blocked, reference in zip(geometry.backward(spikes, grad_currents, weight), whole_grads):
        np.testing.assert_allclose(blocked, reference, rtol=1e-12, atol=1e-12)


def test_released_nmnist_shapes():
    """2-15C3-AP2-40C3-AP2-300FC-10 on 34x34 N-MNIST with the released padding 1."""
    architecture = parse_layers(["15C3", "AP2", "40C3", "AP2", "300FC"], (2, 34, 34), 10)
    shapes = [spec.shape for spec in architecture.specs]
    assert shapes == [(15, 34, 34), (40, 17, 17), None, None]
    assert architecture.hidden_sizes == (15 * 34 * 34, 40 * 17 * 17, 300)
    fc = architecture.specs[2].geometry
    assert fc.parameter_shape == (40 * 8 * 8, 300) and fc.pool == 2
    assert architecture.specs[1].geometry.parameter_shape == (15 * 9, 40)


@pytest.mark.parametrize("layers, message", [
    ("15C3", "expected a list of layer strings"),
    (["15X3"], "network.layers[0] = '15X3': expected \"<channels>C<kernel>\""),
    (["AP2", "AP2", "5C3"], "network.layers[1] = 'AP2': two pooling layers in a row"),
    (["10FC", "5C3"], "network.layers[1] = '5C3': a convolution cannot follow a fully-connected layer"),
    (["10FC", "AP2"], "pooling needs channels"),
    (["5C9P0"], "network.layers[0] = '5C9P0': Geometry.kernel_size: a 9x9 kernel"),
    (["AP16", "5C3"], "leaves no position"),
    ([], "expected at least one hidden LIF layer"),
])
def test_layer_description_errors(layers, message):
    with pytest.raises(ValueError) as info:
        parse_layers(layers, INPUT_SHAPE, 4)
    assert message in str(info.value)


def test_network_parameters_check_layers_against_sizes():
    params = NetworkParameters.from_layers(LAYERS, INPUT_SHAPE, 4)
    assert params.n_input == N_INPUT and params.hidden_sizes == (192, 64, 12)
    with pytest.raises(ValueError, match="build with NetworkParameters.from_layers"):
        NetworkParameters(n_input=N_INPUT, hidden_sizes=(10,), n_output=4, layers=tuple(LAYERS),
                          input_shape=INPUT_SHAPE)


# ---------------------------------------------------------------------------------------- Brian2
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("refractory", [0 * ms, 2 * ms], ids=["no_refractory", "refractory"])
def test_kernel_gives_the_same_spikes_as_brian2_for_a_conv_net(rng, refractory, backend):
    params, structure = conv_case(rng, refractory)
    names = params.population_names[1:]
    network = SpikingNetwork(structure, params, record_potentials=names)
    network.present(random_samples(rng, 1))  # earlier samples must not leak into later runs
    samples = random_samples(rng, 3)
    recording = network.present(samples)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=2, backend=backend)
    forward = learner.simulate(InputBatch.from_samples(samples, N_STEPS, N_INPUT))
    for name in names:
        brian_spikes = recording.dense_spikes(name)
        assert brian_spikes.sum() > 10, f"{name} must spike to test anything"
        assert np.array_equal(brian_spikes, forward.traces[name].spikes), f"{name}: spikes differ"
        np.testing.assert_allclose(forward.traces[name].potential, recording.potentials[name],
                                   rtol=0, atol=1e-12, err_msg=name)
    # The pruned channel of hidden_2 is silent at every position.
    silent = recording.dense_spikes("hidden_2").reshape(N_STEPS, 3, 4, 16)[:, :, 1]
    assert not silent.any()


def test_conv_synapses_carry_their_kernel_element(rng):
    params, structure = conv_case(rng)
    network = SpikingNetwork(structure, params)
    projection = structure.projection("hidden_1_to_hidden_2")
    synapses = network["hidden_1_to_hidden_2"]
    kernel_index = np.asarray(synapses.kernel_index[:])
    listed = projection.geometry.synapses()
    present = projection.exists.ravel()[listed.parameter_index]
    assert len(synapses) == int(present.sum()), "absent kernel elements remove their synapses"
    np.testing.assert_array_equal(synapses.i[:], listed.pre[present])
    np.testing.assert_array_equal(synapses.j[:], listed.post[present])
    np.testing.assert_array_equal(kernel_index, listed.parameter_index[present])
    np.testing.assert_allclose(synapses.w[:], projection.weight.ravel()[kernel_index] / 4, rtol=0)
    assert float(synapses.pooling_factor[:]) == 0.25
    printed = str(shared_synapse_equations())
    assert "kernel_index" in printed and "pooling_factor" in printed
    assert "spine_range_upper" not in str(synapses.equations), "spine state: per kernel element"
    state = network.read_synapse_state("hidden_1_to_hidden_2")
    np.testing.assert_array_equal(state["parameter_index"], kernel_index)
    assert "upper" not in state
    # A write of the shared weights reaches every synapse of each kernel element.
    projection.weight *= 2.0
    network.write_weights(projection)
    np.testing.assert_allclose(synapses.w[:], projection.weight.ravel()[kernel_index] / 4, rtol=0)
    # Alive masks are per channel in the structure, per neuron in Brian2.
    alive = np.asarray(network["hidden_2"].alive[:])
    np.testing.assert_array_equal(alive, np.repeat([True, False, True, True], 16))


# ---------------------------------------------------------------------------------------- gradients
def shared_output_case(rng):
    """input (2,6,6) -> conv 3C3 -> [AP2] conv 2C3 as output (18 neurons): the output projection
    shares each kernel element among 9 positions x 4 pooled neurons."""
    geometry_1 = Geometry("convolution", (2, 6, 6), 3, kernel_size=3, padding=1)
    geometry_2 = Geometry("convolution", (3, 6, 6), 2, kernel_size=3, padding=1, pool=2)
    populations = (Population("input", 72, shape=(2, 6, 6)), Population("hidden_1", 108, shape=(3, 6, 6)),
                   Population("output", 18, shape=(2, 3, 3)))
    projections = []
    for name, source, target, geometry, gain in (
        ("input_to_hidden_1", "input", "hidden_1", geometry_1, 1.6),
        ("hidden_1_to_output", "hidden_1", "output", geometry_2, 2.0),
    ):
        weight = rng.normal(0.0, gain / np.sqrt(geometry.parameter_shape[0]) * 3, geometry.parameter_shape)
        projections.append(Projection(name, source, target, weight, np.ones(weight.shape, bool),
                                      SpineState.from_weights(weight), geometry))
    structure = Structure(populations, tuple(projections))
    params = NetworkParameters(n_input=72, hidden_sizes=(108,), n_output=18, n_steps=N_STEPS)
    return params, structure


@pytest.mark.parametrize("backend", BACKENDS)
def test_finite_difference_gradient_of_shared_kernel_elements(rng, backend):
    """Membrane loss with the spike pattern fixed: dL/dK of each shared output kernel element (a
    sum over 36 synapses) is the exact derivative."""
    params, structure = shared_output_case(rng)
    learner = Learner(structure, params.layer_dynamics(),
                      LearningParameters(loss="membrane_cross_entropy", logit_scale=3.0), n_threads=2,
                      backend=backend)
    batch = InputBatch.from_samples(random_samples(rng, 3, n_events=150, n_input=72), N_STEPS, 72)
    labels = np.array([0, 7, 17])
    forward = learner.simulate(batch)
    assert forward.traces["hidden_1"].spikes.any() and forward.output().spikes.any()
    _, grads = learner.gradients(batch, forward, labels)
    weight = structure.projection("hidden_1_to_output").weight
    for index in [(0, 0), (4, 1), (13, 0), (26, 1), (20, 0)]:
        numeric = loss_central_difference(learner, batch, labels, forward, weight, index)
        assert abs(numeric) > 1e-8, "a zero derivative would test nothing"
        assert grads["hidden_1_to_output"][index] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["rate_cross_entropy", "membrane_cross_entropy"])
def test_shared_gradients_are_the_summed_gradients_of_the_unrolled_network(rng, loss, backend):
    """Every layer: the conv net's gradient of a kernel element equals the sum, over its synapses,
    of the gradients of the same network with one weight per synapse (fully connected learner,
    already checked against forward-mode derivatives), times the pooling factor; a pruned channel
    and absent kernel elements included."""
    params, structure = conv_case(rng, prune=True)
    settings = LearningParameters(loss=loss, logit_scale=5.0)
    conv = Learner(structure, params.layer_dynamics(), settings, n_threads=2, backend=backend)
    batch = InputBatch.from_samples(random_samples(rng, 3), N_STEPS, N_INPUT)
    labels = np.array([0, 2, 3])
    forward = conv.simulate(batch)
    _, grads = conv.gradients(batch, forward, labels)

    populations = tuple(Population(p.name, p.size, p.neuron_alive.copy()) for p in structure.populations)
    flat = []
    for projection in structure.projections:
        if projection.geometry is None:
            flat.append(projection.copy())
            continue
        geometry = projection.geometry
        listed = geometry.synapses()
        effective = projection.effective_weight()
        source_dead = ~structure.population(projection.source).alive[geometry.row_channel()]
        effective[source_dead] = projection.weight[source_dead]  # latent outputs of a pruned channel
        matrix = unrolled(geometry, effective)
        present = np.zeros(matrix.shape, bool)
        present[listed.pre, listed.post] = True
        flat.append(Projection(projection.name, projection.source, projection.target, matrix, present,
                               SpineState.from_weights(matrix)))
    reference = Learner(Structure(populations, tuple(flat)), params.layer_dynamics(), settings,
                        n_threads=1, backend="numpy")
    flat_forward = reference.simulate(batch)
    for name in forward.order:
        assert np.array_equal(flat_forward.traces[name].spikes, forward.traces[name].spikes), name
    _, flat_grads = reference.gradients(batch, flat_forward, labels)
    for projection in structure.projections:
        if projection.geometry is None:
            np.testing.assert_allclose(grads[projection.name], flat_grads[projection.name], rtol=1e-10)
            continue
        listed = projection.geometry.synapses()
        per_synapse = flat_grads[projection.name][listed.pre, listed.post] * listed.factor
        summed = np.bincount(listed.parameter_index, per_synapse, minlength=projection.weight.size)
        assert np.abs(summed).max() > 1e-8, f"{projection.name}: a zero gradient tests nothing"
        np.testing.assert_allclose(grads[projection.name].ravel(), summed, rtol=1e-9, atol=1e-13,
                                   err_msg=projection.name)


@needs_numba
def test_auto_backend_trains_shared_projections_in_the_compiled_kernels(rng):
    params, structure = conv_case(rng, prune=False)
    assert Learner(structure, params.layer_dynamics(), LearningParameters()).backend == "numba"
    assert Learner(structure, params.layer_dynamics(), LearningParameters(), backend="numpy").backend == "numpy"


def _spikes_and_errors(rng, geometry, n_steps=4, n_samples=5, dtype=np.float64):
    """Random spikes, and errors with the zeros of a real batch (the compiled kernels skip them).

    Zeros: single entries, whole positions (every channel) and the whole last step, as the
    rectangular surrogate leaves them.
    """
    spikes = rng.random((n_steps, n_samples, geometry.n_source)) < 0.3
    grad_currents = rng.normal(size=(n_steps, n_samples, geometry.out_channels, geometry.n_positions))
    grad_currents[rng.random(grad_currents.shape) < 0.3] = 0.0
    grad_currents[:, :, :, rng.random(geometry.n_positions) < 0.3] = 0.0
    grad_currents[-1] = 0.0
    return spikes, grad_currents.reshape(n_steps, n_samples, -1).astype(dtype)


def _position_major(geometry, array):
    """(T, B, N) channel-major -> (T, B, positions, channels)."""
    t, b, _ = array.shape
    return np.ascontiguousarray(array.reshape(t, b, geometry.out_channels, geometry.n_positions).transpose(0, 1, 3, 2))


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"{g.kind}-pool{g.pool}-k{g.kernel_size}")
def test_compiled_shared_operators_equal_the_geometry(rng, geometry, dtype):
    """Event-driven weight gradient from the presynaptic spikes only (bool layer spikes and a CSR
    input batch) and the error of the pooled input, un-pooled: those of ``Geometry.backward``, the
    NumPy operator tested above against the listed synapses (1e-12 in float64)."""
    import scipy.sparse as sp

    from sdsnn_bio.learning.shared import pooled_gradient_shared, weight_gradient_shared

    workers = RowBlocks(2)
    weight = rng.normal(size=geometry.parameter_shape).astype(dtype)
    spikes, grad_currents = _spikes_and_errors(rng, geometry, dtype=dtype)
    n_steps, n_samples = spikes.shape[:2]
    flat_spikes = spikes.reshape(n_steps * n_samples, -1)
    reference_weight, reference_spikes = geometry.backward(
        flat_spikes, grad_currents.reshape(n_steps * n_samples, -1), weight)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    scale = np.abs(reference_weight).max()
    position_major = _position_major(geometry, grad_currents)
    from_dense = weight_gradient_shared(None, spikes, geometry, position_major, workers)
    from_csr = weight_gradient_shared(sp.csr_matrix(flat_spikes.astype(np.float64)), None, geometry,
                                      position_major, workers)
    for compiled in (from_dense, from_csr):
        assert compiled.dtype == dtype
        np.testing.assert_allclose(compiled, reference_weight, rtol=0, atol=tolerance * scale)
    pooled = pooled_gradient_shared(geometry, position_major, weight, workers)
    assert pooled.values.dtype == dtype
    unpooled = pooled.unpooled().reshape(n_steps * n_samples, -1)
    np.testing.assert_allclose(unpooled, reference_spikes, rtol=0,
                               atol=tolerance * np.abs(reference_spikes).max())
    assert np.array_equal(pooled.index < 0, geometry.source_pooled() < 0), "units dropped by pooling"


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("geometry", [g for g in GEOMETRIES if g.kind == "convolution"],
                         ids=lambda g: f"pool{g.pool}-k{g.kernel_size}-pad{g.padding}")
def test_transposed_convolution_equals_the_blas_product_and_col2im(rng, geometry, dtype):
    """The compiled transposed convolution (non-zero errors only, per-position columns with fused
    multiply-adds) gives the error of the previous path: the BLAS product ``dL/dI W^T`` of every
    position, then col2im, written out here in NumPy (1e-12 of the largest in float64)."""
    from sdsnn_bio.learning.shared import pooled_gradient_shared

    weight = rng.normal(size=geometry.parameter_shape).astype(dtype)
    _, grad_currents = _spikes_and_errors(rng, geometry, dtype=dtype)
    position_major = _position_major(geometry, grad_currents)
    n_steps, n_samples, n_positions, c_out = position_major.shape
    c_in, hp, wp = geometry.pooled_shape
    k, pad, out_w = geometry.kernel_size, geometry.padding, geometry.target_shape[2]
    columns = position_major.reshape(-1, c_out) @ weight.T  # (rows * positions, (c_in, dy, dx))
    columns = columns.reshape(n_steps * n_samples, n_positions, c_in, k, k)
    expected = np.zeros((n_steps * n_samples, c_in, hp, wp), dtype)
    for p in range(n_positions):
        oy, ox = divmod(p, out_w)
        for dy in range(k):
            for dx in range(k):
                py, px = oy + dy - pad, ox + dx - pad
                if 0 <= py < hp and 0 <= px < wp:
                    expected[:, :, py, px] += columns[:, p, :, dy, dx]
    expected = expected.transpose(0, 2, 3, 1).reshape(n_steps, n_samples, -1)  # position-major
    pooled = pooled_gradient_shared(geometry, position_major, weight, RowBlocks(2))
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    assert pooled.values.dtype == dtype
    np.testing.assert_allclose(pooled.values, expected, rtol=0, atol=tolerance * np.abs(expected).max())
    single = pooled_gradient_shared(geometry, position_major, weight, RowBlocks(1))
    assert np.array_equal(single.values, pooled.values), "each sample row is summed by one thread"


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("refractory_steps", [0, 2])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"{g.kind}-pool{g.pool}-k{g.kernel_size}")
def test_backward_with_the_weight_gradient_equals_the_two_passes(rng, geometry, refractory_steps, dtype):
    """BPTT with the weight gradient (and, for a convolution, the error of the pooled input)
    computed in the same pass, as the learner runs convolutions: the same dL/dI and pooled error
    bit for bit, and the weight gradient of the separate pass over the stored dL/dI (1e-12 of the
    largest in float64), from bool spikes and from a CSR input, with and without keeping dL/dI."""
    import scipy.sparse as sp

    from sdsnn_bio.learning.shared import (
        backward_shared,
        backward_weight_gradient_shared,
        pooled_gradient_shared,
        weight_gradient_shared,
    )

    workers = RowBlocks(2)
    dynamics = LayerDynamics(decay=0.8, threshold=1.0, reset=0.0, refractory_steps=refractory_steps)
    weight = rng.normal(0.0, 1.2, size=geometry.parameter_shape).astype(dtype)
    spikes, _ = _spikes_and_errors(rng, geometry, n_steps=12, dtype=dtype)
    n_steps, n_samples = spikes.shape[:2]
    currents = geometry.forward(spikes.reshape(n_steps * n_samples, -1), weight).reshape(n_steps, n_samples, -1)
    trace = integrate_layer(currents, dynamics, np.ones(geometry.n_target, bool))
    grad_spikes = rng.normal(size=trace.potential.shape).astype(dtype)
    rectangular = make_surrogate("rectangular", None)
    expected_currents = backward_shared(trace, dynamics, rectangular, geometry, grad_spikes, None, None, workers)
    assert np.count_nonzero(expected_currents == 0) > 0, "the kernels skip zero errors: some must be zero"
    expected = weight_gradient_shared(None, spikes, geometry, expected_currents, workers)
    convolution = geometry.kind == "convolution"
    expected_error = pooled_gradient_shared(geometry, expected_currents, weight, workers)
    scale = np.abs(expected).max()
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    csr = sp.csr_matrix(spikes.reshape(n_steps * n_samples, -1).astype(np.float64))
    for matrix, presynaptic in ((None, spikes), (csr, None)):
        kept, gradient, none = backward_weight_gradient_shared(trace, dynamics, rectangular, geometry, grad_spikes,
                                                               None, None, matrix, presynaptic, workers)
        assert none is None and np.array_equal(kept, expected_currents)
        assert gradient.dtype == dtype
        np.testing.assert_allclose(gradient, expected, rtol=0, atol=tolerance * scale)
        if not convolution:
            with pytest.raises(ValueError, match="convolutions only"):
                backward_weight_gradient_shared(trace, dynamics, rectangular, geometry, grad_spikes, None, None,
                                                matrix, presynaptic, workers, weight_below=weight)
            continue
        dropped, alone, error = backward_weight_gradient_shared(
            trace, dynamics, rectangular, geometry, grad_spikes, None, None, matrix, presynaptic, workers,
            keep_grad_currents=False, weight_below=weight)
        assert dropped is None
        assert np.array_equal(alone, gradient)
        assert np.array_equal(error.values, expected_error.values)
        assert np.array_equal(error.index, expected_error.index) and error.factor == expected_error.factor


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("refractory_steps", [0, 2])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"{g.kind}-pool{g.pool}-k{g.kernel_size}")
def test_compiled_shared_layer_equals_the_numpy_layer(rng, geometry, refractory_steps, dtype):
    """Forward (event-driven currents + LIF loop, a dead neuron, and the reconstruction from given
    spikes) and BPTT (surrogate, un-pooling of the error above and recursion fused) of one layer
    fed by a shared projection: the NumPy path's spikes, potentials and dL/dI on random spikes."""
    from sdsnn_bio.learning.shared import PooledError, backward_shared, integrate_shared

    workers = RowBlocks(2)
    dynamics = LayerDynamics(decay=0.8, threshold=1.0, reset=0.0, refractory_steps=refractory_steps)
    weight = rng.normal(0.0, 1.2, size=geometry.parameter_shape).astype(dtype)
    spikes, _ = _spikes_and_errors(rng, geometry, n_steps=12, dtype=dtype)
    n_steps, n_samples = spikes.shape[:2]
    alive = np.ones(geometry.n_target, bool)
    alive[1] = False
    currents = geometry.forward(spikes.reshape(n_steps * n_samples, -1), weight).reshape(n_steps, n_samples, -1)
    reference = integrate_layer(currents, dynamics, alive)
    compiled = integrate_shared(None, spikes, geometry, weight, dynamics, alive, None, n_steps, workers)
    assert reference.spikes.sum() > 10, "the layer must spike to test anything"
    assert np.array_equal(compiled.spikes, reference.spikes)
    assert np.array_equal(compiled.counts(), reference.spikes.sum(axis=0))
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    assert compiled.potential.dtype == dtype
    np.testing.assert_allclose(compiled.potential, reference.potential, rtol=0, atol=tolerance)
    if refractory_steps:
        assert np.array_equal(compiled.not_refractory, reference.not_refractory)
    given = integrate_shared(None, spikes, geometry, weight, dynamics, alive, reference.spikes, n_steps, workers)
    np.testing.assert_allclose(given.potential, reference.potential, rtol=0, atol=tolerance)

    # BPTT: dL/ds given per neuron (rectangular surrogate: exactly zero outside its window), and
    # un-pooled from the error of a pooled projection above reading this layer.
    layer_shape = geometry.target_shape if geometry.kind == "convolution" else (geometry.n_target, 1, 1)
    above = Geometry("dense", layer_shape, 3, pool=2 if min(layer_shape[1:]) >= 2 else 1)
    grad_pooled = rng.normal(size=(n_steps, n_samples, int(np.prod(above.pooled_shape)))).astype(dtype)
    unpooled = above._unpool(grad_pooled.reshape(-1, *above.pooled_shape)).reshape(n_steps, n_samples, -1)
    grad_potential = rng.normal(size=unpooled.shape).astype(dtype)
    trace = LayerTrace(reference.potential, reference.spikes, reference.not_refractory)
    for surrogate in ("fast_sigmoid", "rectangular"):
        function = make_surrogate(surrogate, None)
        expected = backward_layer(trace, dynamics, function, unpooled, grad_potential)
        scale = np.abs(expected).max()
        given_spikes = backward_shared(trace, dynamics, function, geometry, unpooled, grad_potential, None, workers)
        from_pooled = backward_shared(trace, dynamics, function, geometry, None, grad_potential,
                                      PooledError(grad_pooled, above.source_pooled(), above.factor), workers)
        for result in (given_spikes, from_pooled):
            assert result.dtype == dtype
            np.testing.assert_allclose(result, _position_major(geometry, expected), rtol=0, atol=tolerance * scale)


@needs_numba
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss, surrogate", [("rate_cross_entropy", "fast_sigmoid"),
                                             ("membrane_cross_entropy", "fast_sigmoid"),
                                             ("rate_mse", "fast_sigmoid"), ("rate_mse", "rectangular")])
def test_compiled_shared_path_gives_the_numpy_paths_gradients(rng, loss, surrogate, dtype):
    """The whole conv net (input CSR -> conv -> pooled conv -> pooled dense -> dense; a pruned
    channel, absent kernel elements, refractoriness), both forward semantics: the "numba"
    backend's spikes and gradients of every projection equal the "numpy" backend's (1e-12 of the
    largest gradient in float64) on random input spikes, and two training steps (the second on the
    work arrays the first left, ``Learner.workspace``) keep the weights equal. The rectangular
    surrogate (the SCNN presets') leaves errors exactly zero, which the compiled kernels skip."""
    import copy

    params, structure = conv_case(rng, prune=True)
    batch = InputBatch.from_samples(random_samples(rng, 5), N_STEPS, N_INPUT)
    labels = np.array([0, 1, 2, 3, 0])
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    for masked_forward in (True, False):
        results = {}
        for backend in ("numpy", "numba"):
            learner = Learner(copy.deepcopy(structure), params.layer_dynamics(),
                              LearningParameters(loss=loss, surrogate=surrogate, masked_forward=masked_forward,
                                                 dtype=dtype),
                              n_threads=2, backend=backend)
            forward = learner.simulate(batch)
            results[backend] = learner, forward, learner.gradients(batch, forward, labels)[1]
        (numpy_learner, numpy_forward, numpy_grads), (numba_learner, numba_forward, numba_grads) = (
            results["numpy"], results["numba"])
        for name in numpy_forward.order:
            assert numpy_forward.traces[name].spikes.sum() > 10, f"{name} must spike to test anything"
            assert np.array_equal(numba_forward.traces[name].spikes, numpy_forward.traces[name].spikes), name
        for name, reference in numpy_grads.items():
            scale = np.abs(reference).max()
            assert scale > 0, f"{name}: a zero gradient tests nothing"
            assert numba_grads[name].dtype == np.dtype(dtype), name
            np.testing.assert_allclose(numba_grads[name], reference, rtol=0, atol=tolerance * scale,
                                       err_msg=f"{name}, masked_forward={masked_forward}")
        for _ in range(2):
            numpy_learner.train_step(batch, labels)
            numba_learner.train_step(batch, labels)
        assert numba_learner.workspace.names(), "the compiled step runs on the workspace's arrays"
        for projection in numpy_learner.structure.projections:
            other = numba_learner.structure.projection(projection.name).weight
            np.testing.assert_allclose(other, projection.weight, rtol=0, atol=10 * tolerance, err_msg=projection.name)


# ---------------------------------------------------------------------------------------- structure
def test_structure_with_geometry_round_trips(tmp_path, rng):
    _, structure = conv_case(rng)
    path = structure.save(tmp_path / "conv.npz")
    loaded = Structure.load(path)
    for mine, theirs in zip(structure.populations, loaded.populations):
        assert (mine.name, mine.size, mine.shape) == (theirs.name, theirs.size, theirs.shape)
        np.testing.assert_array_equal(mine.alive, theirs.alive)
    for mine, theirs in zip(structure.projections, loaded.projections):
        assert mine.geometry == theirs.geometry
        np.testing.assert_array_equal(mine.weight, theirs.weight)
    summary = structure.summary()
    assert summary["channels_alive"] == {"input": 2, "hidden_1": 3, "hidden_2": 3}
    assert summary["neurons_alive"]["hidden_2"] == 48


def test_structure_rejects_inconsistent_geometries(rng):
    geometry = Geometry("convolution", (2, 8, 8), 3, kernel_size=3, padding=1)
    weight = np.zeros(geometry.parameter_shape)
    projection = Projection("a_to_b", "a", "b", weight, np.ones(weight.shape, bool),
                            SpineState.from_weights(weight), geometry)
    with pytest.raises(ValueError, match="its geometry reads a source of shape"):
        Structure((Population("a", 128), Population("b", 192, shape=(3, 8, 8))), (projection,))
    with pytest.raises(ValueError, match="produces 192 neurons of shape"):
        Structure((Population("a", 128, shape=(2, 8, 8)), Population("b", 192)), (projection,))
    with pytest.raises(ValueError, match="has parameters of shape"):
        Projection("a_to_b", "a", "b", np.zeros((3, 3)), np.ones((3, 3), bool),
                   SpineState.from_weights(np.zeros((3, 3))), geometry)
    with pytest.raises(ValueError, match="alive has shape"):
        Population("b", 192, np.ones(192, bool), shape=(3, 8, 8))


# ---------------------------------------------------------------------------------------- development
@pytest.mark.parametrize("semantics", ["package", "released"])
def test_development_prunes_whole_channels_and_regrows_kernel_elements(rng, semantics):
    params, structure = conv_case(rng, prune=False)
    rules = DevelopmentParameters(initial_pruning_rate=0.5, consecutive_steps=2, regrowth_consecutive_steps=0,
                                  revival_min_synapses=100, semantics=semantics)
    state = DevelopmentState.initial(structure, rules)
    assert state.protected["hidden_2"].shape == (4,), "one entry per channel"
    if rules.released:  # the first released step only sets the ranges
        structure, _, state = develop_structure(structure, DevelopmentActions(spines=False), rules, state)
    incoming = structure.projection("hidden_1_to_hidden_2")
    incoming.spine.upper[:, 2] *= 3.0  # channel 2 is the most important, channels 0 and 3 the least
    incoming.spine.upper[:, 0] *= 0.5
    incoming.spine.upper[:, 3] *= 0.7
    new, record, state = develop_structure(
        structure, DevelopmentActions(spines=False, constrain=False, prune=True, regenerate=False),
        rules, state)
    hidden_1 = new.population("hidden_1")
    assert hidden_1.n_alive == 2, "floor(0.5 * 3) channels of hidden_1 pruned"
    # hidden_2 is ranked after hidden_1's pruning, which (package semantics) removed the kernel
    # rows that read the pruned channel: importance = summed normalised width per output channel.
    exists = incoming.exists.copy()
    if not rules.released:
        exists[~hidden_1.alive[incoming.geometry.row_channel()]] = False
    expected = neuron_importance(incoming.spine, exists, over_all=rules.released)
    assert expected.shape == (4,)
    np.testing.assert_allclose(record.importance["hidden_2"], expected)
    hidden_2 = new.population("hidden_2")
    np.testing.assert_array_equal(hidden_2.alive, [False, True, True, False])  # floor(0.5 * 4) channels
    assert hidden_2.n_neurons_alive == 2 * 16
    pruned_in = new.projection("hidden_1_to_hidden_2")
    assert not pruned_in.exists[:, [0, 3]].any()
    np.testing.assert_array_equal(pruned_in.exists[:, [1, 2]], exists[:, [1, 2]])
    outgoing = new.projection("hidden_2_to_hidden_3")  # rows: pooled positions, channel-major
    rows_of = outgoing.geometry.row_channel()
    hidden_3_alive = new.population("hidden_3").alive  # pruned per neuron, 6 of 12
    assert hidden_3_alive.sum() == 6
    assert not outgoing.exists[:, ~hidden_3_alive].any()
    if rules.released:
        assert outgoing.exists[:, hidden_3_alive].all(), "released: a pruned unit loses its input only"
    else:
        assert not outgoing.exists[np.isin(rows_of, [0, 3])].any()
        assert outgoing.exists[np.ix_(np.isin(rows_of, [1, 2]), hidden_3_alive)].all()
    for population in new.hidden_populations:  # fully-connected hidden_3 is pruned per neuron
        assert population.alive.shape == (population.n_units,)

    # Regeneration acts per kernel element: one absent element of a living channel regrows alone.
    grown = new.copy()
    element = grown.projection("hidden_1_to_hidden_2")
    row = int(np.flatnonzero(hidden_1.alive[element.geometry.row_channel()])[4])  # reads a live channel
    element.exists[row, 1] = False
    element.weight[row, 1] = 10.0 * np.abs(element.weight).max()
    before = element.exists.copy()
    after = grown
    for _ in range(1 + int(rules.released)):  # released: N + 2 steps above the percentile
        after, _, state = develop_structure(
            after, DevelopmentActions(spines=False, constrain=False, prune=False, regenerate=True),
            rules, state)
    regrown = after.projection("hidden_1_to_hidden_2").exists & ~before
    assert regrown[row, 1] and regrown.sum() == 1


def test_undeveloped_layers_and_per_layer_initial_rates(rng):
    """Released SCNNs: conv1 (hidden_1) is never pruned and its kernels get no spine rule,
    constraint or regrowth; conv2's channels start at their own rate."""
    _, structure = conv_case(rng, prune=False)
    first = structure.projection("input_to_hidden_1")
    first.weight[0, 0] = 50.0  # far outside its range: a constraint would clip it
    first.exists[1, 1] = False
    first.weight[1, 1] = 60.0  # far above any percentile: regeneration would regrow it
    rules = DevelopmentParameters(consecutive_steps=1, regrowth_consecutive_steps=0, initial_pruning_rate=0.5,
                                  layer_initial_pruning_rates={"hidden_2": 0.25},
                                  undeveloped_layers=["hidden_1"])
    state = DevelopmentState.initial(structure, rules)
    assert state.pruning_rates == {"hidden_1": 0.5, "hidden_2": 0.25, "hidden_3": 0.5}
    everything = DevelopmentActions(spines=True, constrain=True, prune=True, regenerate=True)
    new, record, _ = develop_structure(structure, everything, rules, state)
    assert new.population("hidden_1").alive.all(), "an undeveloped layer is never pruned"
    assert new.population("hidden_2").n_alive == 3, "floor(0.25 * 4) channels"
    assert new.population("hidden_3").n_alive == 6
    untouched = new.projection("input_to_hidden_1")
    assert untouched.weight[0, 0] == 50.0 and not untouched.exists[1, 1]
    np.testing.assert_array_equal(untouched.spine.upper, first.spine.upper)
    assert record.projections["input_to_hidden_1"]["weights_clipped"] == 0
    with pytest.raises(ValueError, match=r"undeveloped_layers: \['conv1'\] are not hidden populations"):
        develop_structure(structure, everything, DevelopmentParameters(undeveloped_layers=("conv1",)), state)
    with pytest.raises(ValueError, match="layer_initial_pruning_rates: expected a table"):
        DevelopmentParameters(layer_initial_pruning_rates={"hidden_2": 1.5})

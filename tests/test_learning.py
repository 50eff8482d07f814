"""The learner: kernel equivalence with Brian2, reconstruction, gradients, optimiser.

Both backends (the NumPy reference and the fused Numba kernels) are checked against Brian2 and
against an independent forward-mode derivative, and against each other.
"""

from __future__ import annotations

import numpy as np
import pytest
from brian2 import ms
from conftest import loss_central_difference

from sdsnn_bio.learning.fused import SURROGATE_CODES, kernels, numba_available
from sdsnn_bio.learning.kernel import LayerDynamics, integrate_layer
from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.learning.loss import cross_entropy, predict
from sdsnn_bio.learning.optim import Adam, LearningRateSchedule
from sdsnn_bio.learning.parallel import RowBlocks
from sdsnn_bio.learning.surrogate import SURROGATES, make_surrogate
from sdsnn_bio.model import NetworkParameters, NeuronParameters, SpikingNetwork, initial_structure

N_INPUT, N_STEPS = 40, 30

needs_numba = pytest.mark.skipif(not numba_available(), reason="Numba is not installed")
#: Every backend, the Numba one skipped where Numba is not installed.
BACKENDS = ["numpy", pytest.param("numba", marks=needs_numba)]


def random_samples(rng, n_samples, n_events=150, n_input=N_INPUT, n_steps=N_STEPS):
    samples = []
    for _ in range(n_samples):
        key = np.unique(rng.integers(0, n_steps, n_events) * n_input + rng.integers(0, n_input, n_events))
        samples.append((key % n_input, key // n_input))
    return samples


def make_case(rng, refractory=0 * ms, v_reset=0.0, hidden=(25, 15), prune=True):
    params = NetworkParameters(
        n_input=N_INPUT, hidden_sizes=hidden, n_output=4, n_steps=N_STEPS, weight_init_gain=7.0,
        hidden=NeuronParameters(refractory=refractory, v_reset=v_reset),
        output=NeuronParameters(refractory=refractory, tau_membrane=10 * ms),
    )
    structure = initial_structure(params, rng)
    if prune:
        structure.population("hidden_1").alive[[2, 5]] = False
        first = structure.projection("input_to_hidden_1")
        first.exists[rng.random(first.shape) < 0.3] = False
    return params, structure


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("refractory, v_reset", [(0 * ms, 0.0), (2 * ms, 0.0), (3 * ms, -0.4)])
def test_kernel_gives_the_same_spikes_as_brian2(rng, refractory, v_reset, backend):
    params, structure = make_case(rng, refractory, v_reset)
    samples = random_samples(rng, 5)
    names = params.population_names[1:]
    network = SpikingNetwork(structure, params, record_potentials=names)
    network.present(random_samples(rng, 2))  # earlier samples must not leak into later runs
    recording = network.present(samples)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=2,
                      backend=backend)
    forward = learner.simulate(InputBatch.from_samples(samples, N_STEPS, N_INPUT))
    total = 0
    for name in names:
        brian_spikes = recording.dense_spikes(name)
        total += brian_spikes.sum()
        assert np.array_equal(brian_spikes, forward.traces[name].spikes), f"{name}: spikes differ"
        np.testing.assert_allclose(
            forward.traces[name].potential, recording.potentials[name], rtol=0, atol=1e-12,
            err_msg=f"{name}: potential differs from the Brian2 StateMonitor",
        )
    assert total > 100, "the case must actually spike to test anything"


@pytest.mark.parametrize("backend", BACKENDS)
def test_reconstruction_from_brian2_spikes_matches_state_monitor(rng, backend):
    params, structure = make_case(rng, refractory=2 * ms)
    samples = random_samples(rng, 4)
    names = params.population_names[1:]
    recording = SpikingNetwork(structure, params, record_potentials=names).present(samples)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1,
                      backend=backend)
    rebuilt = learner.reconstruct(
        InputBatch.from_samples(samples, N_STEPS, N_INPUT),
        {name: recording.dense_spikes(name) for name in names},
    )
    for name in names:
        np.testing.assert_allclose(rebuilt.traces[name].potential, recording.potentials[name],
                                   rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("refractory", [0 * ms, 2 * ms], ids=["no_refractory_default", "refractory"])
def test_finite_difference_gradient_of_output_weights(rng, backend, refractory):
    """Membrane loss: with the spike pattern fixed, dL/dW_out is the exact derivative."""
    params, structure = make_case(rng, refractory=refractory, hidden=(20,), prune=False)
    learner = Learner(structure, params.layer_dynamics(),
                      LearningParameters(loss="membrane_cross_entropy", logit_scale=3.0), n_threads=1,
                      backend=backend)
    batch = InputBatch.from_samples(random_samples(rng, 3), N_STEPS, N_INPUT)
    labels = np.array([0, 1, 3])
    forward = learner.simulate(batch)
    assert forward.output().spikes.any(), "output spikes (and resets) are part of the check"
    _, grads = learner.gradients(batch, forward, labels)
    weight = structure.projection("hidden_1_to_output").weight
    for index in [(0, 0), (3, 1), (7, 2), (19, 3), (11, 0)]:
        numeric = loss_central_difference(learner, batch, labels, forward, weight, index)
        assert grads["hidden_1_to_output"][index] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def tangent_of_loss(learner, batch, labels, directions):
    """Forward-mode derivative of the loss along ``directions``, with the same surrogate calculus.

    An independent implementation (forward in time, no transposes) of what BPTT computes backwards.
    """
    structure = learner.structure
    forward = learner.simulate(batch)
    inputs = batch.matrix.toarray().reshape(batch.n_steps, batch.n_samples, -1)
    presynaptic, d_presynaptic = inputs, np.zeros_like(inputs)
    for name in forward.order:
        trace, dyn = forward.traces[name], learner.dynamics[name]
        projection = structure.projection_into(name)
        weight = projection.effective_weight()
        direction = directions[projection.name] * projection.exists
        d_current = presynaptic @ direction + d_presynaptic @ weight
        d_v = np.zeros(d_current.shape[1:])
        d_spikes = np.zeros_like(d_current)
        d_potential = np.zeros_like(d_current)
        for t in range(batch.n_steps):
            r = np.ones_like(d_v) if trace.not_refractory is None else trace.not_refractory[t]
            d_u = np.where(r > 0, dyn.decay, 1.0) * d_v
            d_potential[t] = d_u
            d_spikes[t] = learner.surrogate.derivative(trace.potential[t] - dyn.threshold) * r * d_u
            keep = ~trace.spikes[t]
            d_v = keep * (d_u + r * d_current[t])
        presynaptic, d_presynaptic = trace.spikes.astype(float), d_spikes
    scale = learner.params.logit_scale
    counts, mean_potential = learner.readout(forward)
    if learner.params.loss == "rate_cross_entropy":
        _, grad_logits = cross_entropy(scale * counts / batch.n_steps, labels)
        d_logits = scale * d_spikes.sum(axis=0) / batch.n_steps
    elif learner.params.loss == "rate_mse":
        target = np.eye(counts.shape[1])[labels]
        grad_logits = 2.0 * (counts / batch.n_steps - target) / counts.size
        d_logits = d_spikes.sum(axis=0) / batch.n_steps
    else:
        _, grad_logits = cross_entropy(scale * mean_potential, labels)
        d_logits = scale * d_potential.mean(axis=0)
    return float(np.sum(grad_logits * d_logits))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
@pytest.mark.parametrize("loss", ["rate_cross_entropy", "membrane_cross_entropy", "rate_mse"])
@pytest.mark.parametrize("refractory", [0 * ms, 2 * ms], ids=["no_refractory_default", "refractory"])
def test_bptt_matches_forward_mode_derivative(rng, surrogate, loss, backend, refractory):
    params, structure = make_case(rng, refractory=refractory, hidden=(18, 12), prune=False)
    learner = Learner(structure, params.layer_dynamics(),
                      LearningParameters(surrogate=surrogate, loss=loss), n_threads=2, backend=backend)
    batch = InputBatch.from_samples(random_samples(rng, 3), N_STEPS, N_INPUT)
    labels = np.array([2, 0, 1])
    _, grads = learner.gradients(batch, learner.simulate(batch), labels)
    directions = {p.name: rng.normal(size=p.shape) for p in structure.projections}
    backward = sum(float(np.sum(grads[name] * directions[name] * structure.projection(name).exists))
                   for name in grads)
    forward = tangent_of_loss(learner, batch, labels, directions)
    assert abs(forward) > 1e-8, "a degenerate (zero) derivative would test nothing"
    assert backward == pytest.approx(forward, rel=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("refractory", [0 * ms, 2 * ms], ids=["no_refractory_default", "refractory"])
def test_gradient_of_latent_weights_is_that_of_present_synapses_at_weight_zero(rng, backend, refractory):
    """The gradient of an absent synapse's latent weight (absent between alive neurons, or into or
    out of a pruned neuron) equals the surrogate gradient of the same network in which every such
    synapse exists with weight 0 and the pruned neurons are alive: a pruned neuron has no input, so
    it stays at rest and never fires either way; its outgoing synapses carry their latent weights
    (they carry no spike, so the forward pass is the same). That network's gradient is checked
    against the forward-mode derivative."""
    from sdsnn_bio.structure import Structure

    params, structure = make_case(rng, refractory=refractory, hidden=(25, 15))
    dead = ~structure.population("hidden_1").alive
    incoming = structure.projection("input_to_hidden_1")
    incoming.exists[:, dead] = False  # what pruning does
    structure.projection("hidden_1_to_hidden_2").exists[dead, :] = False
    structure.projection("hidden_2_to_output").exists[rng.random((15, 4)) < 0.3] = False
    incoming.weight[~incoming.exists] = rng.normal(0.0, 0.5, size=int((~incoming.exists).sum()))
    settings = LearningParameters(surrogate="fast_sigmoid", loss="rate_cross_entropy")
    pruned = Learner(structure, params.layer_dynamics(), settings, n_threads=1, backend=backend)
    batch = InputBatch.from_samples(random_samples(rng, 4), N_STEPS, N_INPUT)
    labels = np.array([0, 1, 2, 3])
    forward = pruned.simulate(batch)
    _, grads = pruned.gradients(batch, forward, labels)

    equivalent = []
    for projection in structure.projections:
        copy = projection.copy()
        present = copy.exists.copy()
        if copy.source == "hidden_1":
            present[dead, :] = True  # a pruned neuron's outputs keep their latent weights
        copy.weight[...] = np.where(present, copy.weight, 0.0)
        copy.exists[...] = True
        equivalent.append(copy)
    populations = tuple(
        type(p)(p.name, p.size, np.ones(p.size, dtype=bool)) for p in structure.populations
    )
    alive = Learner(Structure(populations, tuple(equivalent)), params.layer_dynamics(), settings,
                    n_threads=1, backend=backend)
    alive_forward = alive.simulate(batch)
    for name in forward.order:
        assert np.array_equal(alive_forward.traces[name].spikes, forward.traces[name].spikes), name
    _, alive_grads = alive.gradients(batch, alive_forward, labels)
    absent = {p.name: ~p.exists for p in structure.projections}
    for name, reference in alive_grads.items():
        np.testing.assert_allclose(grads[name], reference, rtol=1e-10, atol=1e-14, err_msg=name)
    assert np.abs(grads["input_to_hidden_1"][:, dead]).sum() > 0, "a pruned neuron's inputs learn"
    assert np.abs(grads["input_to_hidden_1"][absent["input_to_hidden_1"]]).sum() > 0
    assert np.abs(grads["hidden_2_to_output"][absent["hidden_2_to_output"]]).sum() > 0
    # The equivalent network's gradient along the absent synapses only is the true surrogate derivative.
    directions = {name: rng.normal(size=mask.shape) * mask for name, mask in absent.items()}
    backward = sum(float(np.sum(alive_grads[name] * directions[name])) for name in directions)
    tangent = tangent_of_loss(alive, batch, labels, directions)
    assert abs(tangent) > 1e-8, "a zero derivative would test nothing"
    assert backward == pytest.approx(tangent, rel=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_latent_weights_of_absent_synapses_receive_gradient(rng, backend):
    params, structure = make_case(rng, hidden=(15,), prune=False)
    projection = structure.projection("input_to_hidden_1")
    projection.exists[:, :5] = False
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1,
                      backend=backend)
    batch = InputBatch.from_samples(random_samples(rng, 4), N_STEPS, N_INPUT)
    _, grads = learner.gradients(batch, learner.simulate(batch), np.array([0, 1, 2, 3]))
    assert np.abs(grads["input_to_hidden_1"][:, :5]).sum() > 0, "absent synapses get a gradient"


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_reduces_the_loss_on_a_separable_toy_task(rng, backend):
    params, structure = make_case(rng, hidden=(30,), prune=False)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(learning_rate=5e-3),
                      n_threads=2, backend=backend)
    prototypes = [random_samples(rng, 1, n_events=120)[0] for _ in range(4)]
    batch = InputBatch.from_samples(prototypes * 4, N_STEPS, N_INPUT)
    labels = np.tile(np.arange(4), 4)
    first = learner.train_step(batch, labels)
    for _ in range(60):
        last = learner.train_step(batch, labels)
    assert last.loss < 0.5 * first.loss, f"loss {first.loss:.3f} -> {last.loss:.3f}"
    assert last.n_correct == 16


def test_integrate_layer_respects_alive_and_checks_shapes():
    dynamics = LayerDynamics(decay=0.5)
    currents = np.full((4, 1, 2), 3.0)
    trace = integrate_layer(currents, dynamics, alive=np.array([True, False]))
    assert trace.spikes[:, 0, 1].sum() == 0, "a dead neuron never fires"
    # alive neuron: v=3 after step 0, u=1.5 fires at step 1 (its input lost), again at step 3
    assert trace.spikes[:, 0, 0].tolist() == [False, True, False, True]
    with pytest.raises(ValueError, match=r"currents: expected shape \(T, B, N\)"):
        integrate_layer(np.zeros((4, 2)), dynamics)


def test_cross_entropy_and_prediction_literals():
    loss, grad = cross_entropy(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert loss == pytest.approx(np.log(4 / 3))
    np.testing.assert_allclose(grad, [[0.25, -0.25]])
    counts = np.array([[2, 2, 0], [0, 0, 0]])
    potential = np.array([[0.1, 0.3, 5.0], [-1.0, 0.2, 0.1]])
    assert predict(counts, potential).tolist() == [1, 1], "ties broken by the mean potential"


def test_adam_first_step_moves_by_the_learning_rate():
    param = {"w": np.array([1.0, -2.0, 0.5])}
    adam = Adam(learning_rate=0.1)
    adam.update(param, {"w": np.array([3.0, -0.5, 0.0])})
    np.testing.assert_allclose(param["w"], [0.9, -1.9, 0.5], atol=1e-7)


def _step_sizes(adam, gradients, name="w"):
    """|change| of every entry at each update, for a sequence of gradients."""
    param = {name: np.zeros_like(gradients[0])}
    sizes = []
    for grad in gradients:
        before = param[name].copy()
        adam.update(param, {name: grad})
        sizes.append(np.abs(param[name] - before))
    return np.array(sizes)


@pytest.mark.parametrize("fused", [False, pytest.param(True, marks=needs_numba)])
def test_a_restarted_synapse_moves_like_a_fresh_one(fused):
    """After Adam.reset, an entry's updates are those of a fresh optimiser fed the same gradients.

    With one global bias-correction count (the defect this pins) a restarted entry under a
    constant gradient moved 2.9x the learning rate on its first update and up to 6x later.
    """
    rng = np.random.default_rng(3)
    n_before, n_after = 400, 300
    gradients = [np.array([0.7, -0.2, 1.3]) * (1 + 0.1 * rng.standard_normal()) for _ in range(n_before + n_after)]
    adam = Adam(learning_rate=1e-3, fused=fused)
    param = {"w": np.zeros(3)}
    for grad in gradients[:n_before]:
        adam.update(param, {"w": grad.reshape(3)})
    adam.reset("w", np.array([True, False, False]))
    sizes = []
    for grad in gradients[n_before:]:
        before = param["w"].copy()
        adam.update(param, {"w": grad})
        sizes.append(np.abs(param["w"] - before))
    sizes = np.array(sizes)
    fresh = _step_sizes(Adam(learning_rate=1e-3), gradients[n_before:])
    np.testing.assert_allclose(sizes[:, 0], fresh[:, 0], rtol=1e-12, err_msg="restarted entry vs fresh")
    assert sizes[0, 0] == pytest.approx(1e-3, rel=1e-6), "the first update moves by the learning rate"
    assert sizes[:, 0].max() < 1.1e-3, "about the learning rate (same-sign gradients), never 2-6x"
    untouched = _step_sizes(Adam(learning_rate=1e-3), gradients)[n_before:]
    np.testing.assert_allclose(sizes[:, 1:], untouched[:, 1:], rtol=1e-12,
                               err_msg="entries not restarted keep their history")


def test_adam_restart_state_round_trips_and_matches_the_fused_update(rng):
    adam = Adam(learning_rate=1e-2)
    param = {"w": rng.normal(size=(6, 5))}
    for _ in range(3):
        adam.update(param, {"w": rng.normal(size=(6, 5))})
    mask = rng.random((6, 5)) < 0.4
    adam.reset("w", mask)
    assert adam.birth_step["w"][mask].tolist() == [3] * int(mask.sum()), "restart remembers the step"
    copy = Adam(learning_rate=1e-2)
    copy.load_state_arrays(adam.state_arrays())
    assert np.array_equal(copy.birth_step["w"], adam.birth_step["w"])
    params = [{"w": param["w"].copy()} for _ in range(2)]
    for _ in range(4):
        grad = {"w": rng.normal(size=(6, 5))}
        adam.update(params[0], grad)
        copy.update(params[1], grad)
    assert np.array_equal(params[0]["w"], params[1]["w"]), "a resumed optimiser continues identically"
    Adam().reset("never_updated", np.ones(3, bool))  # nothing to restart: no error


def test_adam_bias_correction_table_saturates_at_exactly_one():
    adam = Adam(beta1=0.5, beta2=0.9)
    table = adam._correction_table(10_000)
    assert table[-1] == 1.0 and table.size < 1000, "stops growing once every correction is 1.0"
    assert adam._correction_table(20_000).size == table.size, "and never grows again"
    assert table[1] == pytest.approx(np.sqrt(0.1) / 0.5)


@needs_numba
def test_fused_adam_with_restarted_entries_is_bitwise_the_numpy_adam(rng):
    start = rng.normal(size=(17, 9))
    params = {fused: {"w": start.copy()} for fused in (False, True)}
    adams = {fused: Adam(learning_rate=1e-2, fused=fused) for fused in (False, True)}
    for step in range(12):
        grad = {"w": rng.normal(size=start.shape)}
        mask = rng.random(start.shape) < 0.2
        for fused in (False, True):
            if step in (3, 7):
                adams[fused].reset("w", mask)
            adams[fused].update(params[fused], grad, RowBlocks(2))
    assert np.array_equal(params[True]["w"], params[False]["w"])
    assert np.array_equal(adams[True].first_moment["w"], adams[False].first_moment["w"])


@pytest.mark.parametrize("policy", ["restart", "keep"])
def test_learner_optimizer_reset_policy(rng, policy):
    params, structure = make_case(rng, hidden=(8,), prune=False)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(optimizer_reset=policy),
                      n_threads=1, backend="numpy")
    batch = InputBatch.from_samples(random_samples(rng, 3), N_STEPS, N_INPUT)
    learner.train_step(batch, np.array([0, 1, 2]))
    name = "input_to_hidden_1"
    before = learner.optimizer.first_moment[name].copy()
    assert np.abs(before).sum() > 0
    mask = np.zeros(before.shape, bool)
    mask[:, 0] = True
    learner.structure_changed({name: mask})
    after = learner.optimizer.first_moment[name]
    if policy == "keep":
        assert np.array_equal(after, before), "the released code never touches the optimiser"
    else:
        assert not after[mask].any() and np.array_equal(after[~mask], before[~mask])
    with pytest.raises(ValueError, match=r"learning.optimizer_reset: expected one of \['restart', 'keep'\]"):
        LearningParameters(optimizer_reset="zero")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"surrogate": "tanh"}, "learning.surrogate: expected one of"),
        ({"loss": "mse"}, "learning.loss: expected one of"),
        ({"learning_rate": -1.0}, "learning.learning_rate: expected a number in (0.0, inf)"),
        ({"surrogate_scale": -2.0}, "learning.surrogate_scale: expected a positive number"),
    ],
)
def test_learning_parameter_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        LearningParameters(**kwargs)
    assert message in str(info.value)


def test_surrogates_peak_at_threshold():
    x = np.array([-1.0, 0.0, 1.0])
    for name in SURROGATES:
        values = make_surrogate(name).derivative(x)
        assert values[1] >= values[0] and values[1] >= values[2], name
        assert values[0] == pytest.approx(values[2]), f"{name} is symmetric"


# ---------------------------------------------------------------------- the two backends agree
def copy_structure(structure):
    from sdsnn_bio.structure import Structure

    return Structure(tuple(structure.populations), tuple(p.copy() for p in structure.projections))


@needs_numba
@pytest.mark.parametrize("loss", ["rate_cross_entropy", "membrane_cross_entropy"])
@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
@pytest.mark.parametrize("refractory, v_reset, hidden", [
    (0 * ms, 0.0, (25,)), (2 * ms, 0.0, (25, 15)), (3 * ms, -0.4, (25, 15)),
])
def test_numba_backend_gives_the_numpy_spikes_gradients_and_updates(
    rng, refractory, v_reset, hidden, surrogate, loss
):
    """Same spikes and potentials bit for bit, gradients to rounding, Adam bit for bit."""
    params, structure = make_case(rng, refractory, v_reset, hidden=hidden)  # pruned neurons, synapses
    batch = InputBatch.from_samples(random_samples(rng, 5), N_STEPS, N_INPUT)
    labels = np.array([0, 1, 2, 3, 1])
    learners = {
        backend: Learner(copy_structure(structure), params.layer_dynamics(),
                         LearningParameters(surrogate=surrogate, loss=loss), n_threads=2,
                         backend=backend)
        for backend in ("numpy", "numba")
    }
    forwards = {backend: learner.simulate(batch) for backend, learner in learners.items()}
    total = 0
    for name in forwards["numpy"].order:
        ours, reference = forwards["numba"].traces[name], forwards["numpy"].traces[name]
        total += reference.spikes.sum()
        assert np.array_equal(ours.spikes, reference.spikes), f"{name}: spikes differ"
        assert np.array_equal(ours.potential, reference.potential), f"{name}: potentials differ"
        assert np.array_equal(ours.counts(), reference.spikes.sum(axis=0)), f"{name}: counts"
        if reference.not_refractory is None:
            assert ours.not_refractory is None
        else:
            assert np.array_equal(ours.not_refractory, reference.not_refractory), name
    assert total > 100, "the case must actually spike to test anything"
    grads = {backend: learners[backend].gradients(batch, forwards[backend], labels)
             for backend in learners}
    assert grads["numba"][0] == grads["numpy"][0], "same loss"
    for name, reference in grads["numpy"][1].items():
        scale = np.abs(reference).max()
        assert scale > 0, f"{name}: a zero gradient would test nothing"
        np.testing.assert_allclose(grads["numba"][1][name], reference, rtol=1e-11, atol=1e-13 * scale,
                                   err_msg=f"{name}: gradient differs")
    for backend, learner in learners.items():
        learner.train_step(batch, labels)
    for projection in learners["numpy"].structure.projections:
        ours = learners["numba"].structure.projection(projection.name).weight
        np.testing.assert_allclose(ours, projection.weight, rtol=1e-12, atol=1e-15,
                                   err_msg=f"{projection.name}: weights after one step")


@needs_numba
def test_numba_reconstruction_equals_numpy_reconstruction(rng):
    params, structure = make_case(rng, refractory=2 * ms)
    batch = InputBatch.from_samples(random_samples(rng, 3), N_STEPS, N_INPUT)
    reference = Learner(structure, params.layer_dynamics(), LearningParameters(), backend="numpy")
    recorded = {name: trace.spikes for name, trace in reference.simulate(batch).traces.items()}
    recorded["output"] = np.random.default_rng(1).random(recorded["output"].shape) < 0.2
    ours = Learner(structure, params.layer_dynamics(), LearningParameters(), backend="numba")
    expected, rebuilt = reference.reconstruct(batch, recorded), ours.reconstruct(batch, recorded)
    for name in expected.order:
        assert np.array_equal(rebuilt.traces[name].potential, expected.traces[name].potential), name
        assert np.array_equal(rebuilt.traces[name].spikes, recorded[name]), name


@needs_numba
@pytest.mark.parametrize("n_threads", [1, 2])
def test_fused_adam_is_bitwise_the_numpy_adam(rng, n_threads):
    shapes = {"w": (37, 11), "v": (13,)}
    start = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    params = {fused: {name: value.copy() for name, value in start.items()} for fused in (False, True)}
    adams = {fused: Adam(learning_rate=1e-2, fused=fused) for fused in (False, True)}
    workers = RowBlocks(n_threads)
    for _ in range(5):
        grads = {name: rng.normal(size=shape) for name, shape in shapes.items()}
        for fused in (False, True):
            adams[fused].update(params[fused], grads, workers)
    for name in shapes:
        assert np.array_equal(params[True][name], params[False][name]), name
        assert np.array_equal(adams[True].second_moment[name], adams[False].second_moment[name]), name
        assert not np.array_equal(params[True][name], start[name]), "the update moved the weights"


@needs_numba
@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_compiled_surrogates_equal_the_numpy_surrogates(name):
    surrogate = make_surrogate(name)
    potential = np.linspace(-1.5, 3.5, 1001)
    factor = np.linspace(0.5, 2.0, potential.size)
    out = np.empty_like(potential)
    kernels().surrogate_times(potential, 1.0, SURROGATE_CODES[name], float(surrogate.scale), factor, out)
    expected = surrogate.derivative(potential - 1.0) * factor
    np.testing.assert_allclose(out, expected, rtol=1e-15, atol=0, err_msg=name)


def test_learner_backend_and_input_batch_errors(rng):
    params, structure = make_case(rng, hidden=(5,), prune=False)
    with pytest.raises(ValueError, match=r"learning.backend: expected one of \['auto', 'numba', 'numpy'\]"):
        Learner(structure, params.layer_dynamics(), LearningParameters(), backend="torch")
    batch = InputBatch.from_samples(random_samples(rng, 2), N_STEPS, N_INPUT)
    with pytest.raises(ValueError, match="InputBatch.matrix: expected n_steps\\*n_samples = 90 rows"):
        InputBatch(batch.matrix, 3, N_STEPS)
    doubled = batch.matrix * 2.0
    with pytest.raises(ValueError, match="InputBatch.matrix: expected spikes"):
        InputBatch(doubled.tocsr(), 2, N_STEPS)


@pytest.mark.parametrize("n_threads, blocks_per_thread", [(1, 1), (2, 1), (2, 4), (3, 4)])
def test_row_blocks_cover_every_row_once(n_threads, blocks_per_thread):
    workers = RowBlocks(n_threads)
    for n_rows in (1, 7, 64, 513):
        blocks = workers.bounds(n_rows, blocks_per_thread)
        covered = np.concatenate([np.arange(a, b) for a, b in blocks])
        assert covered.tolist() == list(range(n_rows)), "contiguous, in order, no overlap"
        assert len(blocks) <= n_threads * blocks_per_thread


def test_auto_backend_falls_back_to_numpy_without_numba(rng, monkeypatch):
    import sdsnn_bio.learning.fused as fused

    params, structure = make_case(rng, hidden=(5,), prune=False)
    monkeypatch.setattr(fused, "_NUMBA_IMPORTS", False)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters())
    assert learner.backend == "numpy" and not learner.optimizer.fused
    with pytest.raises(ValueError, match="'numba' requested but Numba is not installed"):
        Learner(structure, params.layer_dynamics(), LearningParameters(), backend="numba")
    monkeypatch.setattr(fused, "_NUMBA_IMPORTS", True)
    assert Learner(structure, params.layer_dynamics(), LearningParameters()).backend == "numba"


def test_learning_rate_schedule_literals():
    constant = LearningRateSchedule("constant", base=0.002, total_batches=4)
    assert [constant.at(b) for b in range(6)] == [0.002] * 6
    cosine = LearningRateSchedule("cosine", base=0.01, minimum=0.002, total_batches=4)
    # 0.002 + 0.008 * (1 + cos(pi * b / 4)) / 2 for b = 0..4; past the end it stays at the minimum
    expected = [0.01, 0.002 + 0.004 * (1 + 0.5**0.5), 0.006, 0.002 + 0.004 * (1 - 0.5**0.5), 0.002, 0.002]
    assert [cosine.at(b) for b in range(6)] == pytest.approx(expected, abs=1e-15)
    rates = [cosine.at(b) for b in range(5)]
    assert all(a > b for a, b in zip(rates, rates[1:])), "the cosine decays monotonically"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "linear"}, "lr_schedule: expected one of ['constant', 'cosine', 'step'], got 'linear'"),
        ({"kind": "step", "decay_factor": 0.0}, "lr_decay_factor: expected a number in (0, 1], got 0.0"),
        ({"kind": "step", "decay_epochs": 0}, "lr_decay_epochs: expected an integer >= 1, got 0"),
        ({"base": 0.0}, "learning_rate: expected a finite number > 0, got 0.0"),
        ({"minimum": 0.5}, "min_learning_rate: expected a number in [0, learning_rate = 0.001], got 0.5"),
        ({"total_batches": 0}, "total_batches: expected an integer >= 1, got 0"),
    ],
)
def test_learning_rate_schedule_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError) as err:
        LearningRateSchedule(**kwargs)
    assert str(err.value) == message
    with pytest.raises(ValueError, match="expected an integer >= 0, got -1"):
        LearningRateSchedule().at(-1)


def test_step_learning_rate_schedule_decays_every_n_epochs():
    """The released MNIST/N-MNIST/DVS scripts' x0.1 every 40 epochs, in batches of 3 per epoch."""
    step = LearningRateSchedule("step", base=1e-3, total_batches=300, decay_factor=0.1, decay_epochs=40,
                                batches_per_epoch=3)
    assert step.at(0) == step.at(119) == 1e-3, "epochs 0-39"
    assert step.at(120) == pytest.approx(1e-4) and step.at(239) == pytest.approx(1e-4), "epochs 40-79"
    assert step.at(240) == pytest.approx(1e-5), "epoch 80"
    from sdsnn_bio.config import ExperimentConfig

    config = ExperimentConfig.from_dict({"learning": {"lr_schedule": "step", "epochs": 100, "lr_decay_epochs": 10,
                                                      "lr_decay_factor": 0.5}})
    schedule = config.learning_rate_schedule(100 * 7)  # 7 batches per epoch
    assert schedule.at(69) == 1e-3 and schedule.at(70) == 5e-4, "epoch 10 starts at batch 70"


def test_rate_mse_is_the_released_mse_of_rates_against_one_hot():
    """rate_mse = mean over samples and classes of (rate - one_hot)^2; gradient by finite differences."""
    from sdsnn_bio.learning.loss import rate_mse

    rates = np.array([[0.5, 0.0, 0.25], [0.0, 1.0, 0.0]])
    labels = np.array([0, 2])
    value, grad = rate_mse(rates, labels)
    # (0.25 + 0 + 0.0625 + 0 + 1 + 1) / 6
    assert value == pytest.approx(2.3125 / 6), "literal value"
    eps = 1e-7
    for index in np.ndindex(rates.shape):
        bumped = rates.copy()
        bumped[index] += eps
        numeric = (rate_mse(bumped, labels)[0] - value) / eps
        assert grad[index] == pytest.approx(numeric, abs=1e-6), f"gradient at {index}"

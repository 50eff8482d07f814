"""The released SD-SNN scripts' semantics (``semantics = "released"``), rule by rule.

Each test restates one rule of the released scripts (Brain-Cog-Lab/SD-SNN ``*/mask.py``; BrainCog
``examples/Structural_Development/SD-SNN/prun_and_generation.py``) as a small literal NumPy/set
computation written from its description in ``docs/development.md`` (per synapse: the set of this
step's candidates intersected with the previous step's, counters, sums), runs it beside the
package's rules in released mode on the same arrays, and requires the same result.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sdsnn_bio.config import load_config
from sdsnn_bio.development import DevelopmentParameters, DevelopmentState, Schedule, develop_structure
from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.model import NetworkParameters, initial_structure
from sdsnn_bio.structure import Population, Structure

K = 3


def network(rng, n_input=30, n_hidden=20, n_output=4):
    params = NetworkParameters(n_input=n_input, hidden_sizes=(n_hidden,), n_output=n_output, n_steps=12,
                               weight_init_gain=6.0)
    return params, initial_structure(params, rng)


def run_step(structure, schedule, params, state):
    """One development step of the package (released mode)."""
    return develop_structure(structure, schedule.actions(state.step), params, state)


# ------------------------------------------------------------------------------- literal restatements
class ReleasedSpines:
    """The released spine rule of one weight tensor (flat), with its per-synapse bookkeeping.

    Ranges start at +-max(w) of the weights given first. At each step: the synapses at or above the
    upper bound now *and* at the previous step add 1 to their counter and their excess to a sum,
    every other synapse restarts both; a counter reaching K moves the bound by sum / K and
    restarts. The same for the lower bound. Then the synapses whose |w| fell now and at the
    previous step count towards shrinkage; reaching K multiplies both bounds by 0.75.
    """

    def __init__(self, weight, k=K, factor=0.75):
        flat = np.asarray(weight, float).ravel()
        top = flat.max()
        self.upper, self.lower = np.full(flat.size, top), np.full(flat.size, -top)
        self.k, self.factor = k, factor
        self.previous = {"upper": set(), "lower": set(), "shrink": set()}
        self.count = {key: np.zeros(flat.size) for key in self.previous}
        self.total = {"upper": np.zeros(flat.size), "lower": np.zeros(flat.size)}
        self.previous_abs = np.abs(flat)

    def _streak(self, key, now, excess=None):
        both = now & self.previous[key]
        self.previous[key] = now
        for i in range(self.count[key].size):
            if i in both:
                self.count[key][i] += 1
                if excess is not None:
                    self.total[key][i] += excess[i]
            else:
                self.count[key][i] = 0
                if excess is not None:
                    self.total[key][i] = 0.0
        return [i for i in range(self.count[key].size) if self.count[key][i] >= self.k]

    def step(self, weight):
        w = np.asarray(weight, float).ravel()
        fired = self._streak("upper", set(np.flatnonzero(w >= self.upper)), w - self.upper)
        for i in fired:
            self.upper[i] += self.total["upper"][i] / self.k
            self.count["upper"][i], self.total["upper"][i] = 0, 0.0
        fired = self._streak("lower", set(np.flatnonzero(w <= self.lower)), w - self.lower)
        for i in fired:
            self.lower[i] += self.total["lower"][i] / self.k
            self.count["lower"][i], self.total["lower"][i] = 0, 0.0
        fired = self._streak("shrink", set(np.flatnonzero(np.abs(w) < self.previous_abs)))
        for i in fired:
            self.upper[i] *= self.factor
            self.lower[i] *= self.factor
            self.count["shrink"][i] = 0
        self.previous_abs = np.abs(w)

    def clip(self, weight):
        w = np.asarray(weight, float).ravel().copy()
        above, below = w > self.upper, w < self.lower
        w[above], w[below] = self.upper[above], self.lower[below]
        return w.reshape(np.shape(weight))


def released_unit(x):
    low, high = x.min(), x.max()
    return (x - low) / (high - low) if high != low else np.full(x.shape, 0.5)


# ------------------------------------------------------------------------------- the rules
def test_schedule_step_s_is_the_released_epoch_s():
    """Released: epoch 0 sets the ranges; spines from epoch 1, clipping for epoch > K, pruning and
    regeneration for epoch > 2K (the trophic and percentile clocks start at epoch 2K + 1)."""
    params = DevelopmentParameters(semantics="released", consecutive_steps=K)
    schedule = Schedule(steps_per_epoch=1).resolve(K, params.initialisation_steps)
    assert (schedule.constraint_warmup_steps, schedule.pruning_warmup_steps,
            schedule.regeneration_warmup_steps) == (K + 1, 2 * K + 1, 2 * K + 1)
    assert DevelopmentParameters().initialisation_steps == 0, "package: no initialisation step"
    with pytest.raises(ValueError, match=r"DevelopmentParameters.semantics: expected one of \['package', 'released'\]"):
        DevelopmentParameters(semantics="paper")


def test_spine_ranges_start_from_the_trained_weights_and_follow_the_released_spine_rule(rng):
    """Ranges from +-max(w) after the first epoch; N+1-step streaks with the first step's excess
    left out; only the first projection's spines move, the last keeps its initial range; the
    constraint clips every weight of every projection, latent weights included."""
    _, structure = network(rng)
    params = DevelopmentParameters(semantics="released", consecutive_steps=K)
    schedule = Schedule(pruning=False, regeneration=False).resolve(K, 1)
    state = DevelopmentState.initial(structure, params)
    first, last = structure.projections
    first.exists[:3, :2] = False  # absent synapses: the rule sees 0 for them, the clip their latent w
    trained = {p.name: p.weight + rng.normal(0, 0.3, p.shape) for p in structure.projections}
    for projection in structure.projections:
        projection.weight[...] = trained[projection.name]
    references = {p.name: ReleasedSpines(p.effective_weight()) for p in structure.projections}
    structure, record, state = run_step(structure, schedule, params, state)
    assert not any(record.actions.to_dict().values()), "the first step only sets the ranges"
    drift = {p.name: rng.normal(0, 0.04, p.shape) + np.linspace(-0.08, 0.08, p.shape[1]) for p in structure.projections}
    fired_total = 0
    for step in range(1, 30):
        for projection in structure.projections:
            projection.weight[...] = projection.weight + drift[projection.name] + rng.normal(0, 0.05, projection.shape)
        inputs = {p.name: p.weight.copy() for p in structure.projections}
        structure, record, state = run_step(structure, schedule, params, state)
        ref = references[first.name]
        ref.step(np.where(first.exists, inputs[first.name], 0.0))
        fired_total += record.projections[first.name]["upper_enlarged"] + record.projections[first.name]["spines_shrunk"]
        for projection in structure.projections:
            ref = references[projection.name]
            expected = ref.clip(inputs[projection.name]) if step >= K + 1 else inputs[projection.name]
            np.testing.assert_allclose(projection.spine.upper.ravel(), ref.upper, rtol=1e-12,
                                       err_msg=f"{projection.name} r_upper, step {step}")
            np.testing.assert_allclose(projection.spine.lower.ravel(), ref.lower, rtol=1e-12,
                                       err_msg=f"{projection.name} r_lower, step {step}")
            np.testing.assert_array_equal(projection.weight, expected, err_msg=f"{projection.name} w, step {step}")
    assert fired_total > 10, "the trajectory must make spines enlarge and shrink to test anything"
    np.testing.assert_array_equal(structure.projections[1].spine.upper.ravel(), references[last.name].upper)
    assert np.all(structure.projections[1].spine.upper == structure.projections[1].spine.upper.flat[0]), \
        "the last projection keeps its initial range"
    assert (structure.projections[0].weight[:3, :2] != 0).any(), "latent weights are not zeroed before pruning"


def test_pruning_importance_and_trophic_rate_follow_the_released_scripts(rng):
    """Importance = per neuron, the summed unit(width) normalised over ALL synapses times the mask;
    the floor(p n) least important neurons not pruned before lose their input (only); the weights
    of every absent synapse are zeroed; p += gain exp(-(e - 2K - 1)) alive / n_out, the floor after
    23 epochs; a neuron counts as alive with at least 20 incoming synapses (N-MNIST's rule)."""
    _, structure = network(rng, n_input=30, n_hidden=20, n_output=4)
    params = DevelopmentParameters(semantics="released", consecutive_steps=K, initial_pruning_rate=0.2,
                                   output_trophic_gain=0.01, output_trophic_decay_steps=1.0,
                                   output_trophic_floor=7.5e-6, output_trophic_floor_after_steps=23,
                                   max_pruning_rate=0.99)
    schedule = Schedule(spine_plasticity=False, constraint=False, regeneration=False).resolve(K, 1)
    start = 2 * K + 1
    state = replace(DevelopmentState.initial(structure, params), step=start)
    first = structure.projections[0]
    first.spine.upper[...] = rng.uniform(0.2, 1.0, first.shape)
    first.spine.lower[...] = -rng.uniform(0.2, 1.0, first.shape)
    first.exists[rng.random(first.shape) < 0.1] = False  # some absent synapses of alive neurons
    # The narrowest spines are absent ones: normalising over all synapses then shifts every unit
    # width, which reorders neurons with different numbers of existing synapses.
    first.spine.upper[~first.exists], first.spine.lower[~first.exists] = 0.01, -0.01
    mask = first.exists.astype(float)
    ever_pruned: set[int] = set()
    percent = 100 * params.initial_pruning_rate
    n_hidden, n_output = 20, 4
    for epoch in range(start, start + 30):
        for projection in structure.projections:  # a "training epoch" moves every weight, latent too
            projection.weight[...] = projection.weight + rng.normal(0, 0.05, projection.shape)
        weights = [p.weight.copy() for p in structure.projections]
        structure, record, state = run_step(structure, schedule, params, state)
        # -- the released computation on the same arrays
        width = first.spine.upper + np.abs(first.spine.lower)
        importance = (released_unit(width.ravel()).reshape(width.shape) * mask).sum(axis=0)
        bottom = np.argsort(importance, kind="stable")[:int(n_hidden * percent / 100)]
        new = sorted(set(bottom.tolist()) - ever_pruned)
        mask[:, new] = 0.0
        ever_pruned |= set(new)
        alive = n_hidden - int(np.count_nonzero(mask.sum(axis=0) < 20))
        factor = math.exp(-(epoch - start)) if epoch - start <= 23 else 0.00075
        percent += factor * alive / n_output
        # -- compare
        ours = structure.projections[0]
        assert np.array_equal(ours.exists, mask > 0), f"epoch {epoch}: pruned synapses"
        assert sorted(record.populations["hidden_1"]["pruned"]) == new, f"epoch {epoch}: pruned neurons"
        np.testing.assert_array_equal(ours.weight, weights[0] * mask, err_msg="absent weights zeroed")
        assert structure.projections[1].exists.all(), "a pruned neuron keeps its outgoing synapses"
        np.testing.assert_array_equal(structure.projections[1].weight, weights[1])
        assert state.pruning_rates["hidden_1"] == pytest.approx(percent / 100, rel=1e-12), f"epoch {epoch}: rate"
    assert 4 <= len(ever_pruned) < n_hidden, "pruning acted, and not on everything"


def test_regrowth_follows_the_released_scripts(rng):
    """A pruned synapse regrows once its weight (drifted during the epoch) exceeded the q-th
    percentile of ALL the projection's weights at more than N counted steps, where a step counts
    only if the synapse was a candidate at the previous step too (N + 2 steps in a row);
    q = q0 + 1.1 ** (e - 2K - 1), at most 99. Regrown synapses keep their weight."""
    n = 2
    _, structure = network(rng, n_input=30, n_hidden=10, n_output=4)
    params = DevelopmentParameters(semantics="released", consecutive_steps=K, regrowth_consecutive_steps=n,
                                   regeneration_initial_percentile=55.0, revival_min_synapses=1)
    schedule = Schedule(spine_plasticity=False, constraint=False, pruning=False).resolve(K, 1)
    start = 2 * K + 1
    state = replace(DevelopmentState.initial(structure, params), step=start)
    first = structure.projections[0]
    dead = np.array([1, 4, 7])
    first.exists[:, dead] = False
    structure.population("hidden_1").alive[dead] = False
    candidate_before: set[int] = set()
    count = np.zeros(first.weight.size)
    mask = first.exists.copy().ravel()
    regrown_total = 0
    for epoch in range(start, start + 12):
        ours = structure.projections[0]
        ours.weight[...] = ours.weight + rng.normal(0, 0.15, ours.shape)
        ours.weight[:, dead] += 0.05  # latent weights of the pruned neurons' inputs drift upwards
        w = ours.weight.ravel().copy()
        structure, record, state = run_step(structure, schedule, params, state)
        # -- the released computation
        q = min(55.0 + 1.1 ** (epoch - start), 99.0)
        threshold = np.percentile(w, q)
        candidates = set(np.flatnonzero(w > threshold)) & set(np.flatnonzero(~mask))
        both = candidates & candidate_before
        for i in range(w.size):
            count[i] = count[i] + 1 if i in both else 0
        regrow = np.flatnonzero(count > n)
        mask[regrow] = True
        count[regrow] = 0
        candidate_before = candidates
        regrown_total += regrow.size
        assert np.array_equal(structure.projections[0].exists.ravel(), mask), f"epoch {epoch}: regrown synapses"
        np.testing.assert_array_equal(structure.projections[0].weight.ravel(), w, err_msg="regrown keep their weight")
    assert regrown_total >= 3, "synapses must regrow to test anything"


@pytest.mark.parametrize("semantics", ["package", "released"])
def test_the_last_projection_is_clipped_unless_switched_off(rng, semantics):
    """CIFAR-10 (constrain_last_projection = false) never clips fc2; the other scripts do."""
    _, structure = network(rng)
    for projection in structure.projections:
        projection.weight[...] = 3.0 * projection.spine.upper  # every weight above its range
    schedule = Schedule(constraint_warmup_steps=0, pruning=False, regeneration=False,
                        spine_plasticity=False).resolve(K, 0)
    for last_too in (True, False):
        params = DevelopmentParameters(semantics=semantics, consecutive_steps=K,
                                       constrain_last_projection=last_too)
        state = replace(DevelopmentState.initial(structure, params), step=1)
        new, record, _ = develop_structure(structure, schedule.actions(1), params, state)
        first, last = new.projections
        assert np.array_equal(first.weight, first.spine.upper), "the first projection is clipped"
        clipped = np.array_equal(last.weight, last.spine.upper)
        assert clipped == last_too and (last_too or np.array_equal(last.weight, 3.0 * last.spine.upper))


def test_trophic_ratio_counts_neurons_with_enough_incoming_synapses(rng):
    """Released: p += gain exp(-x) * (neurons with at least 20 incoming synapses) / n_out, so a
    pruned neuron with a few regrown synapses (alive here) still counts as pruned."""
    _, structure = network(rng, n_input=30, n_hidden=10, n_output=4)
    params = DevelopmentParameters(semantics="released", consecutive_steps=K, initial_pruning_rate=0.0,
                                   output_trophic_gain=0.01, trophic_min_synapses=20)
    schedule = Schedule(spine_plasticity=False, constraint=False, regeneration=False).resolve(K, 1)
    state = replace(DevelopmentState.initial(structure, params), step=2 * K + 1)
    first = structure.projections[0]
    first.exists[:, :4] = False
    first.exists[:5, 1] = True  # neuron 1: 5 regrown synapses, revived (alive) but below 20
    first.exists[:25, 2] = True  # neuron 2: 25, counts again
    structure.population("hidden_1").alive[[0, 3]] = False
    structure, record, state = run_step(structure, schedule, params, state)
    counted = int(np.count_nonzero(structure.projections[0].exists.sum(axis=0) >= 20))
    assert counted == 7 and structure.population("hidden_1").n_alive == 8
    assert state.pruning_rates["hidden_1"] == pytest.approx(0.01 * counted / 4, rel=1e-12)
    package = replace(params, trophic_min_synapses=None)
    _, structure2 = network(np.random.default_rng(0), n_input=30, n_hidden=10, n_output=4)
    structure2.population("hidden_1").alive[[0, 3]] = False
    structure2.projections[0].exists[:, [0, 3]] = False
    state2 = replace(DevelopmentState.initial(structure2, package), step=2 * K + 1)
    _, _, state2 = run_step(structure2, schedule, package, state2)
    assert state2.pruning_rates["hidden_1"] == pytest.approx(0.01 * 8 / 4, rel=1e-12), "None: the alive flag"
    with pytest.raises(ValueError, match="DevelopmentParameters.trophic_min_synapses: expected an integer >= 1"):
        DevelopmentParameters(trophic_min_synapses=0)


def test_pruned_synapses_and_neurons_train_densely_between_steps(rng):
    """masked_forward = False: the forward and backward passes are those of the network in which
    every synapse exists with its current weight and every neuron may fire."""
    params, structure = network(rng, n_input=30, n_hidden=12, n_output=4)
    first = structure.projections[0]
    first.exists[:, [2, 5]] = False
    first.exists[rng.random(first.shape) < 0.2] = False
    structure.population("hidden_1").alive[[2, 5]] = False
    dense = Structure(
        tuple(Population(p.name, p.size) for p in structure.populations),
        tuple(replace(p.copy()) for p in structure.projections),
    )
    for projection in dense.projections:
        projection.exists[...] = True
    settings = LearningParameters(masked_forward=False)
    released = Learner(structure, params.layer_dynamics(), settings, n_threads=1, backend="numpy")
    reference = Learner(dense, params.layer_dynamics(), LearningParameters(), n_threads=1, backend="numpy")
    keys = np.unique(rng.integers(0, 12 * 30, size=(3, 120)), axis=None)
    samples = [(k % 30, k // 30) for k in np.array_split(keys, 3)]
    batch = InputBatch.from_samples(samples, 12, 30)
    labels = np.array([0, 1, 2])
    ours, theirs = released.simulate(batch), reference.simulate(batch)
    assert ours.traces["hidden_1"].spikes[:, :, [2, 5]].any(), "pruned neurons fire between steps"
    for name in ours.order:
        assert np.array_equal(ours.traces[name].spikes, theirs.traces[name].spikes), name
    _, grads = released.gradients(batch, ours, labels)
    _, expected = reference.gradients(batch, theirs, labels)
    for name in grads:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-12, atol=1e-15, err_msg=name)


# ------------------------------------------------------------------------------- presets and a run
PRESETS = Path(__file__).resolve().parents[1] / "examples" / "configs"


@pytest.mark.parametrize("name, initial_rate, regeneration, regrowth, percentile, gain, floor", [
    ("released_nmnist", 0.45, False, 10, 60.0, 0.01, 7.5e-6),
    ("released_mnist", 0.35, True, 10, 60.0, 0.01, 7.5e-6),
    ("released_dvs_gesture", 0.60, True, 10, 55.0, 0.01, 7.5e-6),
    ("released_cifar10", 0.02, True, 18, 60.0, 0.005, 5e-6),
])
def test_released_presets_are_valid_and_carry_each_scripts_constants(
    name, initial_rate, regeneration, regrowth, percentile, gain, floor
):
    config = load_config(PRESETS / f"{name}.toml")
    development = config.development_parameters()
    schedule = config.schedule()
    learning = config.learning_parameters()
    assert config.development_enabled and development.semantics == "released"
    assert schedule.steps_per_epoch == 1, "one development step per epoch, as released"
    assert development.consecutive_steps == 18
    assert (development.initial_pruning_rate, schedule.regeneration, development.regrowth_steps,
            development.regeneration_initial_percentile) == (initial_rate, regeneration, regrowth, percentile)
    assert (development.output_trophic_gain, development.output_trophic_decay_steps,
            development.output_trophic_floor, development.output_trophic_floor_after_steps) == (gain, 1.0, floor, 23)
    assert learning.loss == "rate_mse" and not learning.masked_forward and learning.optimizer_reset == "keep"
    assert development.trophic_min_synapses == (50 if name == "released_cifar10" else 20)
    assert development.constrain_last_projection == (name != "released_cifar10"), "CIFAR-10 never clips fc2"
    assert config.network.v_threshold == 0.5
    lines = (PRESETS / f"{name}.toml").read_text(encoding="utf-8").splitlines()
    comments = " ".join(line.lstrip("# ") for line in lines if line.startswith("#"))
    says = "keeps the closest fully-connected network" if name == "released_cifar10" else (
        f"That network is the preset {name}_scnn.toml")
    assert says in comments, "the preset says it is not the conv net"


@pytest.mark.parametrize("name, input_shape, fc1_inputs, classes", [
    ("released_nmnist_scnn", (2, 34, 34), 40 * 8 * 8, 10),
    ("released_mnist_scnn", (1, 28, 28), 40 * 7 * 7, 10),
    ("released_dvs_gesture_scnn", (2, 32, 32), 40 * 8 * 8, 11),
])
def test_released_scnn_presets_build_the_released_architecture(name, input_shape, fc1_inputs, classes):
    """2-15C3-AP2-40C3-AP2-300FC-n (1 input channel for MNIST): conv1 left alone, conv2 pruned per
    channel from 5 %, fc1 per neuron from the script's rate; the other constants as the
    fully-connected preset of the same script."""
    from sdsnn_bio.model import initial_structure

    config = load_config(PRESETS / f"{name}.toml")
    fully_connected = load_config(PRESETS / f"{name.removesuffix('_scnn')}.toml")
    params = config.network_parameters()
    assert params.input_shape == input_shape and params.n_output == classes
    architecture = params.architecture()
    conv1, conv2, fc1, fc2 = (spec.geometry for spec in architecture.specs)
    assert (conv1.kind, conv1.out_channels, conv1.kernel_size, conv1.padding, conv1.pool) == (
        "convolution", 15, 3, 1, 1)
    assert (conv2.kind, conv2.out_channels, conv2.kernel_size, conv2.padding, conv2.pool) == (
        "convolution", 40, 3, 1, 2)
    assert fc1.kind == "dense" and fc1.parameter_shape == (fc1_inputs, 300) and fc1.pool == 2
    assert fc2 is None and architecture.specs[-1].size == classes
    development = config.development_parameters()
    assert development.undeveloped_layers == ("hidden_1",)
    assert development.initial_rate("hidden_2") == 0.05
    assert development.initial_rate("hidden_3") == fully_connected.development_parameters().initial_pruning_rate
    assert config.learning == fully_connected.learning
    # The same simulation settings, but fewer recordings per standalone run: a batch's spikes are held
    # at once, and the conv nets spike far more per recording (docs/benchmarks.md).
    assert replace(config.simulation, standalone_batch=fully_connected.simulation.standalone_batch) == \
        fully_connected.simulation
    assert config.simulation.standalone_batch <= fully_connected.simulation.standalone_batch
    assert {k: v for k, v in config.development.items()
            if k not in ("undeveloped_layers", "layer_initial_pruning_rates")} == fully_connected.development
    structure = initial_structure(params, np.random.default_rng(0))
    development.check_layers(structure)  # the layer names exist in the network


def test_a_released_mode_run_prunes_and_brian2_agrees_with_the_kernel(tmp_path):
    """End to end in released mode (dense training between steps, re-masking at each step): the
    final network evaluated in Brian2 gives the kernel's predictions on every test sample."""
    from sdsnn_bio.experiment import PreparedData, train_model

    rng = np.random.default_rng(5)
    n_input, n_steps = 64, 10

    def samples(labels):
        out = []
        for label in labels:
            channels = np.concatenate([rng.choice(np.arange(label * 16, label * 16 + 16), 10, replace=False),
                                       rng.choice(n_input, 4, replace=False)])
            steps = rng.integers(0, n_steps, channels.size)
            pairs = np.unique(np.stack([channels, steps]), axis=1)
            out.append((pairs[0].astype(np.int64), pairs[1].astype(np.int64)))
        return out

    train_labels, test_labels = np.tile(np.arange(4), 10), np.tile(np.arange(4), 3)
    data = PreparedData(samples(train_labels), train_labels, samples(test_labels), test_labels,
                        {"source": "test: class-dependent random spikes"})
    config = load_config(PRESETS / "released_nmnist.toml").with_overrides([
        "network.hidden_sizes=[16]", f"network.n_steps={n_steps}", "learning.epochs=6",
        "learning.batch_size=10", "learning.threads=1", "learning.augment_max_shift=0",
        "development.consecutive_steps=1", "simulation.codegen_target=numpy",
        "simulation.evaluation_batch=12", f"run.output_dir={tmp_path}", "run.baseline=false",
    ])
    config = replace(config, data=replace(config.data, dataset="nmnist"))
    result = train_model(config, data, tmp_path / "model", development=True, progress=False)
    log = result["development_log"]
    assert not any(log[0]["actions"].values()), "the first step only sets the spine ranges"
    assert log[3]["actions"]["prune"] and sum(sum(e["neurons_pruned"].values()) for e in log) >= 1
    assert result["test"]["kernel_brian2_agreement"] == 1.0

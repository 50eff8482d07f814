"""SD-SNN development rules (pure NumPy, no Brian2): literal trajectories, invariants, errors."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdsnn_bio.development import (
    ConditionError,
    DevelopmentActions,
    DevelopmentParameters,
    DevelopmentState,
    Schedule,
    adapt_pruning_rate,
    constrain_weights,
    develop_structure,
    evaluate_condition,
    neuron_importance,
    neurons_to_prune,
    normalised_spine_width,
    prune,
    regeneration_percentile,
    regeneration_threshold,
    regrow,
    regrowth_step,
    update_spines,
)
from sdsnn_bio.structure import SPINE_FIELDS, Population, Projection, SpineState, Structure


# ---------------------------------------------------------------------------------------- helpers
def spine_of(upper, lower=None, previous=None) -> SpineState:
    upper = np.atleast_2d(np.asarray(upper, dtype=np.float64))
    lower = -upper if lower is None else np.atleast_2d(np.asarray(lower, dtype=np.float64))
    spine = SpineState.from_weights(np.zeros(upper.shape))
    spine.upper = upper.copy()
    spine.lower = lower.copy()
    if previous is not None:
        spine.previous_abs_weight = np.atleast_2d(np.asarray(previous, dtype=np.float64)).copy()
    return spine


def run_spines(weights, spine, k, exists=True, shrink_factor=0.75):
    """Apply update_spines to a 1x1 synapse for a sequence of weights; return the states."""
    states = []
    for w in weights:
        spine, _ = update_spines(np.array([[w]]), np.array([[exists]]), spine, k, shrink_factor)
        states.append(spine)
    return states


def make_structure(sizes, rng, scale=1.0) -> Structure:
    names = ["input"] + [f"hidden_{k}" for k in range(1, len(sizes) - 1)] + ["output"]
    populations = [Population(name, size) for name, size in zip(names, sizes)]
    projections = []
    for (source, n_source), (target, n_target) in zip(zip(names[:-1], sizes[:-1]), zip(names[1:], sizes[1:])):
        weight = rng.normal(0.0, scale / np.sqrt(n_source), (n_source, n_target))
        projections.append(Projection(f"{source}_to_{target}", source, target, weight,
                                      np.ones((n_source, n_target), bool), SpineState.from_weights(weight)))
    return Structure(populations, projections)


def snapshot(structure: Structure) -> dict:
    arrays = structure.to_arrays()
    return {key: np.array(value, copy=True) for key, value in arrays.items()}


ALL = DevelopmentActions(spines=True, constrain=True, prune=True, regenerate=True)


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and bytes (NaN payloads and the sign of zeros included)."""
    a, b = np.asarray(a), np.asarray(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())


def dense_clip(weight: np.ndarray, exists: np.ndarray, spine: SpineState) -> tuple[np.ndarray, int]:
    """The constraint as one dense ``np.clip`` over the existing synapses: the reference."""
    clipped = weight.copy()
    np.clip(clipped, spine.lower, spine.upper, out=clipped, where=exists)
    return clipped, int(np.count_nonzero(clipped != weight))


def awkward_weights(rng: np.random.Generator, weight: np.ndarray, spine: SpineState, nan: bool) -> np.ndarray:
    """Weights with values exactly on a bound, signed zeros, values beyond a bound (and a NaN)."""
    weight = weight.copy()
    flat = rng.permutation(weight.size)
    weight.flat[flat[0::7]] = spine.upper.flat[flat[0::7]]
    weight.flat[flat[1::7]] = spine.lower.flat[flat[1::7]]
    weight.flat[flat[2::7]] = -0.0
    weight.flat[flat[3::7]] = 1.5 * spine.upper.flat[flat[3::7]]
    if nan:
        weight.flat[flat[4]] = np.nan
    return weight


def test_the_rules_do_not_import_brian2():
    import subprocess
    import sys

    code = ("import sys, sdsnn_bio.development as d; d.develop_structure; "
            "assert 'brian2' not in sys.modules, 'brian2 was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------- section 1
def test_enlargement_of_upper_bound_by_the_mean_excess_after_k_steps():
    spine = spine_of([[1.0]], previous=[[1.0]])
    states = run_spines([1.2, 1.5, 1.3], spine, k=3)
    assert [int(s.upper_streak[0, 0]) for s in states] == [1, 2, 0], "counter resets once it fires"
    np.testing.assert_allclose([s.upper_excess[0, 0] for s in states], [0.2, 0.7, 0.0], atol=1e-12)
    np.testing.assert_allclose([s.upper[0, 0] for s in states[:2]], [1.0, 1.0])
    assert states[-1].upper[0, 0] == pytest.approx(1.0 + (0.2 + 0.5 + 0.3) / 3, abs=1e-12)
    assert states[-1].lower[0, 0] == -1.0, "the lower bound did not move"


def test_enlargement_of_lower_bound_is_symmetric():
    spine = spine_of([[1.0]], previous=[[1.0]])
    states = run_spines([-1.1, -1.4, -1.0], spine, k=3)  # -1.0 <= r_lower counts (excess 0)
    assert [int(s.lower_streak[0, 0]) for s in states] == [1, 2, 0]
    np.testing.assert_allclose([s.lower_excess[0, 0] for s in states], [0.1, 0.5, 0.0], atol=1e-12)
    assert states[-1].lower[0, 0] == pytest.approx(-1.0 - 0.5 / 3, abs=1e-12)
    assert states[-1].upper[0, 0] == 1.0


def test_shrinkage_multiplies_both_bounds_by_the_factor_after_k_decreasing_steps():
    spine = spine_of([[1.0]], lower=[[-0.8]], previous=[[0.9]])
    states = run_spines([0.8, 0.7], spine, k=2)
    assert int(states[0].shrink_streak[0, 0]) == 1
    assert (states[-1].upper[0, 0], states[-1].lower[0, 0]) == pytest.approx((0.75, -0.6), abs=1e-12)
    assert int(states[-1].shrink_streak[0, 0]) == 0
    half = run_spines([0.8, 0.7], spine, k=2, shrink_factor=0.5)[-1]
    assert (half.upper[0, 0], half.lower[0, 0]) == pytest.approx((0.5, -0.4), abs=1e-12), "f is a parameter"


def test_a_broken_streak_resets_its_counter_and_its_excess_sum():
    spine = spine_of([[1.0]], previous=[[1.0]])
    states = run_spines([1.2, 1.5, 0.9, 1.1, 1.1, 1.1], spine, k=3)
    assert [int(s.upper_streak[0, 0]) for s in states] == [1, 2, 0, 1, 2, 0]
    assert states[2].upper_excess[0, 0] == 0.0, "the sum restarts with the counter"
    assert states[-1].upper[0, 0] == pytest.approx(1.1, abs=1e-12), "only the new streak counts"
    # shrinkage: decreasing, decreasing, increase (break), decreasing
    shrink = run_spines([0.9, 0.8, 0.85, 0.7], spine_of([[2.0]], previous=[[1.0]]), k=3)
    assert [int(s.shrink_streak[0, 0]) for s in shrink] == [1, 2, 0, 1]
    assert shrink[-1].upper[0, 0] == 2.0


def test_absent_synapses_keep_their_range_and_restart_their_streaks():
    spine = spine_of([[1.0]], previous=[[1.0]])
    spine.upper_streak[:] = 2
    spine.upper_excess[:] = 0.7
    after = run_spines([5.0], spine, k=3, exists=False)[0]
    assert after.upper[0, 0] == 1.0 and after.lower[0, 0] == -1.0
    assert after.upper_streak[0, 0] == 0 and after.upper_excess[0, 0] == 0.0
    assert after.previous_abs_weight[0, 0] == 5.0, "|w| is remembered for the step after regrowth"


def reference_spine_step(w, exists, spine, k, f):
    """The section-1 rule for one synapse, written out with scalars (a dict of its spine state)."""
    out = dict(spine)
    if exists and w >= spine["upper"]:
        out["upper_streak"] += 1
        out["upper_excess"] += w - spine["upper"]
    else:
        out["upper_streak"], out["upper_excess"] = 0, 0.0
    if out["upper_streak"] >= k:
        out["upper"] += out["upper_excess"] / k
        out["upper_streak"], out["upper_excess"] = 0, 0.0
    if exists and w <= spine["lower"]:
        out["lower_streak"] += 1
        out["lower_excess"] += spine["lower"] - w
    else:
        out["lower_streak"], out["lower_excess"] = 0, 0.0
    if out["lower_streak"] >= k:
        out["lower"] -= out["lower_excess"] / k
        out["lower_streak"], out["lower_excess"] = 0, 0.0
    out["shrink_streak"] = out["shrink_streak"] + 1 if exists and abs(w) < spine["previous_abs_weight"] else 0
    if out["shrink_streak"] >= k:
        out["upper"] *= f
        out["lower"] *= f
        out["shrink_streak"] = 0
    out["previous_abs_weight"] = abs(w)
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 3), st.floats(0.1, 1.0))
def test_update_spines_equals_the_rule_written_per_synapse(seed, k, f):
    rng = np.random.default_rng(seed)
    shape = (3, 4)
    weight = rng.normal(0.0, 1.0, shape)
    exists = rng.random(shape) < 0.8
    spine = SpineState.from_weights(weight)
    scalar = [[{name: getattr(spine, name)[a, b].item() for name in SPINE_FIELDS} for b in range(4)]
              for a in range(3)]
    for _ in range(8):
        weight = weight + rng.choice([-0.3, 0.0, 0.3], shape)  # ties with the bounds happen too
        spine, _ = update_spines(weight, exists, spine, k, f)
        for a in range(3):
            for b in range(4):
                scalar[a][b] = reference_spine_step(weight[a, b], exists[a, b], scalar[a][b], k, f)
                for name in SPINE_FIELDS:
                    assert getattr(spine, name)[a, b] == pytest.approx(scalar[a][b][name], abs=1e-12), name


def test_update_spines_does_not_modify_its_input():
    spine = spine_of([[1.0]], previous=[[1.0]])
    before = {name: getattr(spine, name).copy() for name in SPINE_FIELDS}
    run_spines([1.2, 1.5, 1.3], spine, k=3)
    for name in SPINE_FIELDS:
        np.testing.assert_array_equal(getattr(spine, name), before[name])


def test_constraint_clips_existing_weights_into_their_range():
    weight = np.array([[1.5, -2.0], [0.3, 5.0]])
    exists = np.array([[True, True], [True, False]])
    spine = spine_of([[1.0, 1.0], [1.0, 1.0]], lower=[[-1.0, -0.5], [-1.0, -1.0]])
    clipped, count = constrain_weights(weight, exists, spine)
    np.testing.assert_array_equal(clipped, [[1.0, -0.5], [0.3, 5.0]])
    assert count == 2, "two existing weights were outside their range"
    assert weight[0, 0] == 1.5, "input not modified"



@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16), st.booleans())
def test_constrain_weights_equals_a_dense_clip_bit_for_bit(seed, nan):
    rng = np.random.default_rng(seed)
    shape = (6, 7)
    spine = spine_of(rng.random(shape), lower=-rng.random(shape))
    spine.upper.flat[::5], spine.lower.flat[::5] = 0.0, -0.0  # zero-width ranges
    weight = awkward_weights(rng, rng.normal(0.0, 1.0, shape), spine, nan)
    exists = rng.random(shape) < 0.7
    clipped, count = constrain_weights(weight, exists, spine)
    expected, expected_count = dense_clip(weight, exists, spine)
    assert bits_equal(clipped, expected), "same weights, bit for bit"
    assert count == expected_count, "same count (NaN weights count as clipped, as np.clip's != says)"


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 3), st.booleans())
def test_the_constraint_of_a_step_clips_like_a_dense_clip_after_the_spine_update(seed, k, nan):
    # develop_structure clips only the weights the spine update found at or beyond an edge (or whose
    # range shrank): the result must be the dense clip of every existing weight.
    rng = np.random.default_rng(seed)
    structure = make_structure([6, 5, 4], rng)
    for projection in structure.projections:
        projection.exists &= rng.random(projection.shape) < 0.8
    params = DevelopmentParameters(consecutive_steps=k)
    state = DevelopmentState.initial(structure, params)
    for step in range(6):
        for projection in structure.projections:
            moved = projection.weight + rng.normal(0.0, 0.3, projection.shape)
            projection.weight = awkward_weights(rng, moved, projection.spine, nan and step == 3)
        new, record, state = develop_structure(structure, DevelopmentActions(spines=True, constrain=True),
                                               params, state)
        for old, projection in zip(structure.projections, new.projections):
            spine, _ = update_spines(old.weight, old.exists, old.spine, k, params.shrink_factor)
            expected, count = dense_clip(old.weight, old.exists, spine)
            assert bits_equal(projection.weight, expected), f"step {step}, {old.name}: weights"
            assert record.projections[old.name]["weights_clipped"] == count, f"step {step}, {old.name}"
        structure = new


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**16), st.integers(0, 2), st.booleans(), st.booleans())
def test_regrowth_step_equals_its_dense_formula(seed, steps, by_row, no_threshold):
    rng = np.random.default_rng(seed)
    shape = (6, 5)
    weight = rng.normal(0.0, 1.0, shape)
    exists = rng.random(shape) < 0.5
    eligible = rng.random((6, 1) if by_row else shape) < 0.7
    streak = rng.integers(0, 4, shape).astype(np.int32)
    threshold = None if no_threshold else float(rng.normal(0.0, 0.5))
    new_streak, ready = regrowth_step(weight, exists, eligible, streak, threshold, steps)
    above = np.zeros(shape, bool) if threshold is None else eligible & ~exists & (weight > threshold)
    expected = np.where(above, streak + 1, 0).astype(np.int32)
    assert bits_equal(new_streak, expected)
    assert bits_equal(ready, expected > steps)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**16))
def test_normalised_spine_width_equals_its_masked_formula(seed):
    rng = np.random.default_rng(seed)
    shape = (7, 5)
    spine = spine_of(rng.random(shape), lower=-rng.random(shape))
    exists = rng.random(shape) < 0.6
    width = spine.upper + np.abs(spine.lower)
    low = np.min(width, where=exists, initial=np.inf)
    high = np.max(width, where=exists, initial=-np.inf)
    expected = (width - low) * (1.0 / (high - low)) * exists if exists.any() else np.zeros(shape)
    assert bits_equal(normalised_spine_width(spine, exists), expected)


# ---------------------------------------------------------------------------------------- section 2
def test_importance_sums_min_max_normalised_widths_of_existing_incoming_synapses():
    upper = np.array([[0.5, 1.0], [1.5, 0.5], [1.0, 2.5]])  # widths 1 2 / 3 1 / 2 5
    exists = np.array([[True, True], [True, True], [True, False]])
    unit = normalised_spine_width(spine_of(upper), exists)
    np.testing.assert_allclose(unit, [[0.0, 0.5], [1.0, 0.0], [0.5, 0.0]], atol=1e-12)
    np.testing.assert_allclose(neuron_importance(spine_of(upper), exists), [1.5, 0.5], atol=1e-12)


def test_importance_is_half_per_synapse_when_all_widths_are_equal():
    exists = np.array([[True, False, True], [True, False, False]])
    importance = neuron_importance(spine_of(np.full((2, 3), 0.7)), exists)
    np.testing.assert_allclose(importance, [1.0, 0.0, 0.5])


def test_pruning_picks_the_least_important_and_reaches_the_rate():
    importance = np.array([3.0, 1.0, 2.0, 0.5, 4.0])
    alive = np.ones(5, bool)
    none = np.zeros(5, bool)
    assert neurons_to_prune(importance, alive, none, 0.4).tolist() == [1, 3]
    alive[3] = False  # already pruned: counts towards the rate
    assert neurons_to_prune(importance, alive, none, 0.4).tolist() == [1]
    protected = none.copy()
    protected[1] = True  # revived: never pruned again, and it keeps its slot in the pruning set
    assert neurons_to_prune(importance, alive, protected, 0.4).tolist() == []
    assert neurons_to_prune(importance, alive, protected, 0.6).tolist() == [2]
    assert neurons_to_prune(importance, alive, none, 0.2).tolist() == [], "rate already reached"
    assert neurons_to_prune(np.zeros(20), np.ones(20, bool), np.zeros(20, bool), 0.45).size == 9
    assert neurons_to_prune(np.zeros(3), np.ones(3, bool), np.zeros(3, bool), 0.99).size == 2, \
        "one neuron always survives"
    ties = neurons_to_prune(np.array([1.0, 1.0, 1.0, 2.0]), np.ones(4, bool), np.zeros(4, bool), 0.5,
                            tie_breaker=np.array([0.3, 0.1, 0.2, 0.0]))
    assert ties.tolist() == [1, 2], "equal importance: the weaker summed |w| goes first"


def test_neurotrophic_rate_of_a_layer_feeding_a_hidden_layer():
    params = DevelopmentParameters()
    first = adapt_pruning_rate(0.45, 0, 8, 4, False, params)
    assert first == pytest.approx(0.47, abs=1e-15)  # 0.45 + 0.01 * exp(0) * 8/4
    later = adapt_pruning_rate(first, 5, 8, 4, False, params)
    assert later == pytest.approx(0.47735758882342885, abs=1e-15)  # + 0.01 * exp(-1) * 2


def test_neurotrophic_rate_of_the_last_hidden_layer_with_floor_and_cap():
    params = DevelopmentParameters()
    first = adapt_pruning_rate(0.45, 0, 12, 4, True, params)
    assert first == pytest.approx(0.465, abs=1e-15)  # 0.45 + 0.005 * 12/4
    second = adapt_pruning_rate(first, 1, 12, 4, True, params)
    assert second == pytest.approx(0.4705181916175716, abs=1e-15)  # + 0.005 * exp(-1) * 3
    assert adapt_pruning_rate(0.465, 23, 12, 4, True, params) == pytest.approx(
        0.465 + 0.005 * math.exp(-23) * 3, abs=1e-15)
    assert adapt_pruning_rate(0.465, 24, 12, 4, True, params) == pytest.approx(0.465015, abs=1e-15)
    assert adapt_pruning_rate(0.89, 0, 100, 1, True, params) == 0.9, "clipped to max_pruning_rate"


def test_regeneration_percentile_formula_and_cap():
    params = DevelopmentParameters()
    values = [regeneration_percentile(x, params) for x in (0, 1, 2, 10, 38, 39, 100000)]
    np.testing.assert_allclose(values[:5], [61.0, 61.1, 61.21, 62.5937424601, 97.4043434448],
                               atol=1e-9)
    assert values[5] == 99.0 and values[6] == 99.0, "60 + 1.1**39 = 101.1 is capped at 99"


def test_regeneration_threshold_is_a_percentile_of_existing_weights():
    weight = np.array([[0.0, 1.0, 2.0, 3.0, 100.0]])
    exists = np.array([[True, True, True, True, False]])
    assert regeneration_threshold(weight, exists, 50.0) == pytest.approx(1.5)
    assert regeneration_threshold(weight, np.zeros_like(exists), 50.0) is None
    assert regeneration_threshold(weight, exists, 61.0) == pytest.approx(1.83)  # 0.61 * 3 = 1.83
    assert regeneration_threshold(weight, exists, 99.0) == pytest.approx(2.97)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=40), st.floats(0.0, 100.0))
def test_regeneration_threshold_equals_numpys_linear_percentile(values, q):
    weight = np.array([values])
    exists = np.ones_like(weight, dtype=bool)
    assert regeneration_threshold(weight, exists, q) == pytest.approx(
        float(np.percentile(weight, q)), rel=1e-12, abs=1e-12)


def test_regrowth_after_more_than_n_consecutive_steps_above_the_threshold():
    weight = np.array([[0.9, 0.9, 0.2]])
    exists = np.array([[False, True, False]])
    eligible = np.ones_like(exists)
    streak = np.zeros((1, 3), np.int32)
    history = []
    for _ in range(3):
        streak, regrow_mask = regrowth_step(weight, exists, eligible, streak, 0.5, 2)
        history.append((streak.tolist(), regrow_mask.tolist()))
    assert history[0] == ([[1, 0, 0]], [[False, False, False]])
    assert history[1] == ([[2, 0, 0]], [[False, False, False]])
    assert history[2] == ([[3, 0, 0]], [[True, False, False]]), "ready at step N + 1 = 3"
    broken, _ = regrowth_step(np.array([[0.4, 0.9, 0.2]]), exists, eligible, np.array([[2, 0, 0]]), 0.5, 2)
    assert broken.tolist() == [[0, 0, 0]], "a step below the threshold resets the streak"
    ineligible, mask = regrowth_step(weight, exists, np.zeros_like(exists), np.array([[2, 0, 0]]), 0.5, 2)
    assert ineligible.tolist() == [[0, 0, 0]] and not mask.any()


# ---------------------------------------------------------------------------------------- one step
def tiny_structure() -> Structure:
    """input(3) -> hidden_1(4) -> output(2) with hand-set spine widths."""
    rng = np.random.default_rng(0)
    structure = make_structure([3, 4, 2], rng)
    incoming = structure.projection("input_to_hidden_1")
    incoming.weight[:] = 0.1
    incoming.spine.upper[:] = np.array([[1.0, 2.0, 3.0, 4.0]] * 3)
    incoming.spine.lower[:] = -incoming.spine.upper
    return structure


def test_develop_structure_prunes_the_least_important_neuron_and_its_synapses():
    structure = tiny_structure()
    params = DevelopmentParameters(initial_pruning_rate=0.25, revive_neurons=False)
    state = DevelopmentState.initial(structure, params)
    outgoing_before = structure.projection("hidden_1_to_output").weight.copy()
    actions = DevelopmentActions(spines=False, prune=True)
    new, record, new_state = develop_structure(structure, actions, params, state)
    hidden = new.population("hidden_1")
    assert hidden.alive.tolist() == [False, True, True, True], "neuron 0 has the narrowest spines"
    incoming, outgoing = new.projection("input_to_hidden_1"), new.projection("hidden_1_to_output")
    assert not incoming.exists[:, 0].any() and not outgoing.exists[0].any(), "in and out synapses removed"
    assert incoming.exists[:, 1:].all() and outgoing.exists[1:].all()
    assert np.all(incoming.weight[:, 0] == 0.0), "incoming latent weights restart from 0"
    np.testing.assert_array_equal(outgoing.weight, outgoing_before), "outgoing latent weights kept"
    np.testing.assert_array_equal(incoming.spine.upper, structure.projection("input_to_hidden_1").spine.upper)
    d = record.to_dict()
    assert d["populations"]["hidden_1"]["pruned"] == [0]
    assert d["projections"]["input_to_hidden_1"]["synapses_removed"] == 3
    assert d["projections"]["hidden_1_to_output"]["synapses_removed"] == 2
    # 0.25 + 0.005 * exp(0) * 3 alive / 2 outputs
    assert new_state.pruning_rates["hidden_1"] == pytest.approx(0.2575, abs=1e-15)
    assert new_state.pruning_started_step == 0 and new_state.step == 1
    np.testing.assert_allclose(record.importance["hidden_1"], [0.0, 1.0, 2.0, 3.0])
    assert structure.population("hidden_1").alive.all(), "input structure untouched"


def test_revival_restores_a_neuron_and_it_is_not_pruned_again():
    structure = tiny_structure()
    params = DevelopmentParameters(initial_pruning_rate=0.25, regrowth_consecutive_steps=1,
                                   output_trophic_gain=0.0, revival_min_synapses=1)
    state = DevelopmentState.initial(structure, params)
    structure, _, state = develop_structure(structure, DevelopmentActions(spines=False, prune=True), params, state)
    assert structure.population("hidden_1").alive.tolist() == [False, True, True, True]
    outgoing_weight = structure.projection("hidden_1_to_output").weight[0].copy()
    # The learner raises the latent weight of one incoming synapse of the pruned neuron.
    structure.projection("input_to_hidden_1").weight[1, 0] = 5.0
    regen = DevelopmentActions(spines=False, regenerate=True, prune=True)
    structure, first, state = develop_structure(structure, regen, params, state)
    assert first.to_dict()["populations"]["hidden_1"]["revived"] == [], "N = 1: one step is not enough"
    structure, second, state = develop_structure(structure, regen, params, state)
    d = second.to_dict()
    assert d["regeneration_percentile"] == pytest.approx(61.1)
    assert d["populations"]["hidden_1"]["revived"] == [0]
    incoming, outgoing = structure.projection("input_to_hidden_1"), structure.projection("hidden_1_to_output")
    assert incoming.exists[:, 0].tolist() == [False, True, False], "only the regrown synapse"
    assert incoming.weight[1, 0] == 5.0, "it starts from its latent weight"
    assert outgoing.exists[0].all(), "its outgoing synapses come back"
    np.testing.assert_array_equal(outgoing.weight[0], outgoing_weight)
    assert state.protected["hidden_1"].tolist() == [True, False, False, False]
    # The revived neuron is still the least important: it keeps its slot in the pruning set
    # (floor(0.25 * 4) = 1 neuron), so nothing else is pruned and over-pruning is repaired.
    assert d["populations"]["hidden_1"]["pruned"] == []
    assert structure.population("hidden_1").alive.all()
    # Once it is no longer the least important, the slot goes to the least important neuron.
    incoming.spine.upper[:, 0] = incoming.spine.lower[:, 0] = 0.0
    incoming.spine.upper[1, 0], incoming.spine.lower[1, 0] = 100.0, -100.0
    structure, third, state = develop_structure(structure, regen, params, state)
    assert third.to_dict()["populations"]["hidden_1"]["pruned"] == [1]


def test_a_pruned_neuron_revives_only_with_enough_ready_inputs():
    structure = tiny_structure()
    params = DevelopmentParameters(initial_pruning_rate=0.25, regrowth_consecutive_steps=0,
                                   output_trophic_gain=0.0, revival_min_synapses=2)
    state = DevelopmentState.initial(structure, params)
    structure, _, state = develop_structure(structure, DevelopmentActions(spines=False, prune=True), params, state)
    incoming = structure.projection("input_to_hidden_1")
    incoming.weight[0, 0] = 5.0
    regen = DevelopmentActions(spines=False, regenerate=True)
    structure, first, state = develop_structure(structure, regen, params, state)
    incoming = structure.projection("input_to_hidden_1")
    assert first.to_dict()["populations"]["hidden_1"]["revived"] == [], "one ready input is not enough"
    assert not incoming.exists[:, 0].any()
    assert incoming.spine.regrowth_streak[0, 0] == 1, "the ready synapse waits, its streak kept"
    incoming.weight[2, 0] = 5.0
    structure, second, state = develop_structure(structure, regen, params, state)
    assert second.to_dict()["populations"]["hidden_1"]["revived"] == [0]
    assert structure.projection("input_to_hidden_1").exists[:, 0].tolist() == [True, False, True]
    assert structure.projection("input_to_hidden_1").spine.regrowth_streak[:, 0].tolist() == [0, 0, 0]


def test_regeneration_between_alive_neurons_uses_the_percentile_of_existing_weights():
    rng = np.random.default_rng(1)
    structure = make_structure([6, 5, 3], rng)
    projection = structure.projection("input_to_hidden_1")
    projection.exists[0, :] = False
    projection.weight[0, :] = [10.0, -10.0, 0.0, 10.0, 10.0]
    params = DevelopmentParameters(regrowth_consecutive_steps=0)
    state = DevelopmentState.initial(structure, params)
    new, record, _ = develop_structure(structure, DevelopmentActions(spines=False, regenerate=True), params, state)
    assert new.projection("input_to_hidden_1").exists[0].tolist() == [True, False, False, True, True]
    threshold = record.projections["input_to_hidden_1"]["regeneration_threshold"]
    assert threshold == pytest.approx(np.percentile(projection.weight[projection.exists], 61.0))


# ---------------------------------------------------------------------------------------- invariants
@st.composite
def development_runs(draw):
    sizes = [draw(st.integers(2, 7)) for _ in range(draw(st.integers(3, 4)))]
    seed = draw(st.integers(0, 2**16))
    steps = draw(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
                          min_size=1, max_size=6))
    params = DevelopmentParameters(
        consecutive_steps=draw(st.integers(1, 3)),
        initial_pruning_rate=draw(st.floats(0.0, 0.8)),
        regrowth_consecutive_steps=draw(st.integers(0, 2)),
        revive_neurons=draw(st.booleans()),
        revival_min_synapses=draw(st.integers(1, 3)),
    )
    return sizes, seed, steps, params


@settings(max_examples=40, deadline=None)
@given(development_runs())
def test_invariants_of_development_steps(run):
    sizes, seed, steps, params = run
    rng = np.random.default_rng(seed)
    structure = make_structure(sizes, rng)
    for projection in structure.projections:  # some absent synapses with large latent weights
        projection.exists &= rng.random(projection.shape) < 0.8
    state = DevelopmentState.initial(structure, params)
    for spines, constrain, prune_, regenerate in steps:
        for projection in structure.projections:  # "learning" between steps
            projection.weight += rng.normal(0.0, 0.3, projection.shape)
        actions = DevelopmentActions(spines, constrain, prune_, regenerate)
        before = snapshot(structure)
        new, record, state = develop_structure(structure, actions, params, state)
        after = snapshot(structure)
        for key in before:
            np.testing.assert_array_equal(before[key], after[key], err_msg=f"{key} was mutated")
        json.dumps(record.to_dict())
        json.dumps(state.to_dict())
        for old, projection in zip(structure.projections, new.projections):
            added = projection.exists & ~old.exists
            if not regenerate:
                assert not added.any(), "pruning and the spine rules never add a synapse"
            i, j = np.nonzero(added)
            pairs = list(zip(i.tolist(), j.tolist()))
            assert len(set(pairs)) == len(pairs), "no (i, j) pair regrows twice"
            assert not old.exists[i, j].any(), "only absent synapses regrow"
            existing = list(zip(projection.i.tolist(), projection.j.tolist()))
            assert len(set(existing)) == len(existing) == projection.n_synapses
            if constrain:
                w = projection.weight[projection.exists]
                assert np.all(w >= projection.spine.lower[projection.exists])
                assert np.all(w <= projection.spine.upper[projection.exists]), "weights inside their range"
            assert np.all(projection.spine.lower <= 0) and np.all(projection.spine.upper >= 0)
        for name, rate in state.pruning_rates.items():
            assert 0.0 <= rate <= params.max_pruning_rate
            population = new.population(name)
            dead = ~population.alive
            assert not new.projection_into(name).exists[:, dead].any(), "pruned neurons have no input"
            assert not new.projection_from(name).exists[dead].any(), "pruned neurons have no output"
            assert population.n_alive >= 1
        structure = new


def test_state_round_trip_through_json():
    structure = tiny_structure()
    params = DevelopmentParameters(initial_pruning_rate=0.25)
    state = DevelopmentState.initial(structure, params)
    state.protected["hidden_1"][[1, 3]] = True
    _, _, state = develop_structure(structure, ALL, params, state)
    restored = DevelopmentState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored.to_dict() == state.to_dict()
    np.testing.assert_array_equal(restored.protected["hidden_1"], state.protected["hidden_1"])
    with pytest.raises(ValueError, match="DevelopmentState.from_dict: missing key"):
        DevelopmentState.from_dict({"step": 1})


# ---------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "field, value, message",
    [
        ("consecutive_steps", 0, "DevelopmentParameters.consecutive_steps: expected an integer >= 1, got 0"),
        ("consecutive_steps", 2.5, "consecutive_steps: expected an integer >= 1, got 2.5"),
        ("shrink_factor", 1.5, "DevelopmentParameters.shrink_factor: expected a number in (0, 1], got 1.5"),
        ("initial_pruning_rate", -0.1, "initial_pruning_rate: expected a number in [0, 1], got -0.1"),
        ("initial_pruning_rate", 0.95, "initial_pruning_rate: expected a number <= max_pruning_rate (0.9), got 0.95"),
        ("max_pruning_rate", 1.0, "max_pruning_rate: expected a number in [0, 1), got 1.0"),
        ("hidden_trophic_gain", -1.0, "hidden_trophic_gain: expected a number >= 0, got -1.0"),
        ("output_trophic_decay_steps", 0.0, "output_trophic_decay_steps: expected a number of steps > 0"),
        ("regeneration_max_percentile", 101.0, "regeneration_max_percentile: expected a percentile in [0, 100]"),
        ("regrowth_consecutive_steps", -1, "regrowth_consecutive_steps: expected an integer >= 0 or None"),
        ("revive_neurons", 1, "DevelopmentParameters.revive_neurons: expected true or false, got 1"),
        ("revival_min_synapses", 0, "DevelopmentParameters.revival_min_synapses: expected an integer >= 1, got 0"),
    ],
)
def test_parameter_errors_name_the_field_the_range_and_the_value(field, value, message):
    with pytest.raises(ValueError) as info:
        DevelopmentParameters(**{field: value})
    assert message in str(info.value)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("steps_per_epoch", 0, "Schedule.steps_per_epoch: expected a number > 0 (development steps "
                               "per epoch of training), got 0"),
        ("steps_per_epoch", float("nan"), "Schedule.steps_per_epoch: expected a number > 0"),
        ("pruning_warmup_steps", -2, "Schedule.pruning_warmup_steps: expected an integer >= 0 or None"),
        ("regeneration", "yes", "Schedule.regeneration: expected true or false, got 'yes'"),
        ("development_end_steps", 0,
         "Schedule.development_end_steps: expected an integer >= 1 or None (no end), got 0"),
    ],
)
def test_schedule_errors_name_the_field(field, value, message):
    with pytest.raises(ValueError) as info:
        Schedule(**{field: value})
    assert message in str(info.value)


def test_schedule_maps_batches_to_steps_and_steps_to_actions():
    schedule = Schedule(steps_per_epoch=2)  # epochs of 6 batches: a step every 3 batches
    assert [b for b in range(1, 13) if schedule.is_development_batch(b, 6)] == [3, 6, 9, 12]
    assert schedule.development_steps(10, 6) == 3
    assert schedule.step_batches(4, 6) == [3, 6, 9, 12]
    # 4.5 steps per epoch of 45 batches (the embedded main job): every 10 batches, as before
    embedded = Schedule(steps_per_epoch=4.5)
    assert [b for b in range(1, 91) if embedded.is_development_batch(b, 45)] == list(range(10, 91, 10))
    with pytest.raises(ValueError, match="batch_index is 1-based"):
        schedule.is_development_batch(0, 6)
    with pytest.raises(ValueError, match=r"Schedule.steps_per_epoch: expected at most the 3 training "
                                         r"batches per epoch \(at most one development step per batch\), got 4"):
        Schedule(steps_per_epoch=4).is_development_batch(1, 3)
    with pytest.raises(ValueError, match=r"Schedule.constraint_warmup_steps: expected an integer, got None"):
        schedule.actions(0)
    resolved = schedule.resolve(2)
    assert (resolved.constraint_warmup_steps, resolved.pruning_warmup_steps,
            resolved.regeneration_warmup_steps) == (2, 4, 4), "K, 2K and the pruning warm-up"
    table = [resolved.actions(s).to_dict() for s in range(5)]
    assert [t["constrain"] for t in table] == [False, False, True, True, True]
    assert [t["prune"] for t in table] == [False, False, False, False, True]
    assert [t["regenerate"] for t in table] == [False, False, False, False, True]
    assert all(t["spines"] for t in table)
    off = Schedule(regeneration=False, pruning_warmup_steps=1).resolve(18)
    assert off.actions(100).regenerate is False and off.actions(1).prune is True
    assert off.regeneration_warmup_steps == 1, "regeneration follows an explicit pruning warm-up"


def test_schedule_development_end_freezes_the_architecture_only():
    schedule = Schedule(development_end_steps=6).resolve(2)
    table = [schedule.actions(s).to_dict() for s in range(8)]
    assert [t["prune"] for t in table] == [False] * 4 + [True, True] + [False, False]
    assert [t["regenerate"] for t in table] == [False] * 4 + [True, True] + [False, False]
    assert [t["constrain"] for t in table] == [False, False] + [True] * 6, "the constraint goes on"
    assert all(t["spines"] for t in table), "spine plasticity goes on"
    assert Schedule().development_end_steps is None, "default: the released code's open-ended development"
    with pytest.raises(ValueError, match=r"development_end_steps: expected an integer > "
                                         r"pruning_warmup_steps = 4 \(else that rule would never run\), got 4"):
        Schedule(development_end_steps=4).resolve(2)


def test_schedule_and_parameters_field_names_do_not_collide():
    from dataclasses import fields

    assert not {f.name for f in fields(Schedule)} & {f.name for f in fields(DevelopmentParameters)}


# ---------------------------------------------------------------------------------------- conditions
def condition_projection() -> Projection:
    weight = np.array([[0.005, 0.5, -0.2], [-0.001, 0.02, 0.9]])
    exists = np.array([[True, True, True], [True, False, True]])
    return Projection("a_to_b", "a", "b", weight, exists, SpineState.from_weights(weight))


def test_prune_by_condition_returns_the_removed_pairs_and_keeps_latent_weights():
    projection = condition_projection()
    result = prune(projection)  # default: abs(w) < 0.01
    assert list(zip(result.i.tolist(), result.j.tolist())) == [(0, 0), (1, 0)]
    assert result.projection.exists.tolist() == [[False, True, True], [False, False, True]]
    np.testing.assert_array_equal(result.projection.weight, projection.weight)
    assert projection.exists[0, 0], "input not modified"
    again = prune(result.projection, "abs(w) < 0.01")
    assert again.i.size == 0, "absent synapses are not pruned twice"


def test_conditions_support_brian2_and_or_not_and_indices():
    projection = condition_projection()
    mask = evaluate_condition("w > 0 and not i == 1 or j == 2 and exists", projection)
    assert mask.tolist() == [[True, True, True], [False, False, True]]
    assert evaluate_condition("i != j", projection).tolist() == [[False, True, True], [True, False, True]]
    assert evaluate_condition("-0.1 < w <= 0.5", projection).tolist() == [[True, True, False], [True, True, False]]
    assert evaluate_condition("clip(w, lower, upper) == w", projection).all()
    assert evaluate_condition("spine_range_upper == upper", projection).all()


def test_regrow_by_condition_adds_only_absent_pairs_once():
    projection = condition_projection()
    result = regrow(projection, "w > 0")
    assert list(zip(result.i.tolist(), result.j.tolist())) == [(1, 1)], "existing synapses are not re-added"
    assert result.projection.weight[1, 1] == 0.02, "starts from its latent weight"
    assert result.projection.n_synapses == projection.n_synapses + 1
    set_weight = regrow(projection, "True", w="0.5 * upper")
    assert set_weight.projection.weight[1, 1] == pytest.approx(0.45)
    alive = regrow(projection, "True", w=0.1, target_alive=np.array([True, False, True]))
    assert alive.i.size == 0, "no synapse regrows onto a pruned neuron"
    pairs = list(zip(set_weight.projection.i.tolist(), set_weight.projection.j.tolist()))
    assert len(pairs) == len(set(pairs)) == 6


def test_conditions_with_rand_need_a_generator():
    projection = condition_projection()
    with pytest.raises(ConditionError, match="rand\\(\\) needs a random generator"):
        prune(projection, "rand() < 0.5")
    first = prune(projection, "rand() < 0.5", rng=np.random.default_rng(3))
    second = prune(projection, "rand() < 0.5", rng=np.random.default_rng(3))
    np.testing.assert_array_equal(first.i, second.i)


@pytest.mark.parametrize(
    "condition, message",
    [
        ("weight < 0.1", "unknown variable 'weight'; known variables: exists, i, j, lower, lower_excess"),
        ("abs(w) <", "syntax error"),
        ("w.__class__ == 1", "Attribute"),
        ("__import__('os')", "unknown function '__import__'"),
        ("w + 1", "is not a condition"),
        ("w < 1 & exists", "operator '&' is not allowed; use and/or/not"),
        ("w < 'a'", "the literal 'a' is not a number"),
        ("abs", "abs is a function"),
        ("sqrt(w, 2) > 0", "sqrt() takes 1 argument(s), got 2"),
        ("[w][0] > 1", "is not allowed"),
        ("(lambda: 1)() == 1", "only the functions"),
        ("w < 1" + "0" * 400, "is too large"),
        ("+".join(["w"] * 20000) + " > 0", "nested too deeply"),
    ],
)
def test_invalid_conditions_give_clear_errors(condition, message):
    with pytest.raises(ConditionError) as info:
        prune(condition_projection(), condition)
    assert message in str(info.value)
    assert condition[:60] in str(info.value), "the message quotes the condition"
    assert len(str(info.value)) < 600, "even for a huge condition"


@pytest.mark.parametrize("steps_per_epoch", [4.5, 1, 0.3, 7.25])
def test_the_developmental_timeline_in_epochs_does_not_depend_on_the_dataset_size(steps_per_epoch):
    """The same Schedule on 1 438 and 60 000 training samples (batches of 32): the same development
    steps, with the same rules, at the same points of training in epochs (up to one batch)."""
    epochs = 40
    schedule = Schedule(steps_per_epoch=steps_per_epoch).resolve(18)
    timelines = {}
    for n_train in (1438, 10_000, 60_000):
        batches_per_epoch = -(-n_train // 32)  # 45, 313, 1875
        steps = []
        for batch in range(1, epochs * batches_per_epoch + 1):
            if schedule.is_development_batch(batch, batches_per_epoch):
                steps.append((Fraction(batch, batches_per_epoch), schedule.actions(len(steps)).to_dict()))
        assert [Fraction(b, batches_per_epoch) for b in schedule.step_batches(len(steps), batches_per_epoch)] \
            == [epoch for epoch, _ in steps], "step_batches lists the batches that end a step"
        timelines[n_train] = steps
    small, large = timelines[1438], timelines[60_000]
    assert len(small) == len(large) == len(timelines[10_000]) == math.floor(epochs * steps_per_epoch + 1e-9)
    assert [a for _, a in small] == [a for _, a in large], "the same rules at the same steps"
    for (epoch_small, _), (epoch_large, _), s in zip(small, large, range(len(small))):
        ideal = (s + 1) / Fraction(str(steps_per_epoch))  # the epoch at which step s falls due
        assert ideal <= epoch_small < ideal + Fraction(1, 45), f"step {s}: within one batch on 1 438 samples"
        assert ideal <= epoch_large < ideal + Fraction(1, 1875), f"step {s}: within one batch on 60 000 samples"
    if len(large) <= 36:
        assert not any(a["prune"] for _, a in large), "pruning waits for step 2K = 36"
        return
    first_pruning = next(epoch for epoch, a in large if a["prune"])
    assert float(first_pruning) == pytest.approx(37 / steps_per_epoch, abs=1 / 1875), "pruning from step 2K = 36"


# ---------------------------------------------------------------------------------------- named rules
def test_schedule_actions_derive_the_warmups_from_the_rules_parameters():
    params = DevelopmentParameters(consecutive_steps=2)
    schedule = Schedule(development_end_steps=6)
    resolved = schedule.resolve(2)
    assert [schedule.actions(s, params) for s in range(8)] == [resolved.actions(s) for s in range(8)]
    released = DevelopmentParameters(consecutive_steps=2, semantics="released")
    assert [s for s in range(6) if schedule.actions(s, released).constrain] == [3, 4, 5], (
        "released semantics: K steps after the initialisation step")
    with pytest.raises(ValueError, match=r"Schedule.pruning_warmup_steps: expected an integer, got None.*"
                                         r"schedule.actions\(step, params\)"):
        Schedule(constraint_warmup_steps=1).actions(0)


def start_step(structure, actions, params, state=None):
    from sdsnn_bio.development.rules import _Step

    return _Step.start(structure, actions, params, state or DevelopmentState.initial(structure, params))


def test_the_pruning_rule_alone_removes_the_pruning_set_and_its_synapses(rng):
    from sdsnn_bio.development.rules import _pruning_rule

    structure = make_structure([4, 6, 3], rng)
    before = snapshot(structure)
    params = DevelopmentParameters(initial_pruning_rate=0.5)
    step = start_step(structure, DevelopmentActions(spines=False, prune=True), params)
    _pruning_rule(step)
    pruned = np.flatnonzero(~step.structure.population("hidden_1").alive)
    assert pruned.size == 3, "floor(0.5 * 6) neurons"
    assert not step.structure.projection("input_to_hidden_1").exists[:, pruned].any(), "inputs removed"
    assert not step.structure.projection("hidden_1_to_output").exists[pruned, :].any(), "outputs removed"
    assert np.all(step.structure.projection("input_to_hidden_1").weight[:, pruned] == 0.0), "latent reset"
    assert step.pruning_started == 0 and "hidden_1" in step.importance
    assert all(bits_equal(before[k], v) for k, v in structure.to_arrays().items()), "input untouched"


def test_the_revival_rule_alone_revives_neurons_that_regained_inputs(rng):
    from sdsnn_bio.development.rules import _revival_rule

    structure = make_structure([4, 5, 3], rng)
    structure.population("hidden_1").alive[[1, 3]] = False
    structure.projection("input_to_hidden_1").exists[:, [1, 3]] = False
    structure.projection("hidden_1_to_output").exists[[1, 3], :] = False
    step = start_step(structure, DevelopmentActions(spines=False, regenerate=True), DevelopmentParameters())
    step.structure.projection("input_to_hidden_1").exists[2, 3] = True  # as if neuron 3 regrew an input
    _revival_rule(step)
    alive = step.structure.population("hidden_1").alive
    assert alive.tolist() == [True, False, True, True, True], "only neuron 3 regained an input"
    assert step.protected["hidden_1"].tolist() == [False, False, False, True, False], "never pruned again"
    outgoing = step.structure.projection("hidden_1_to_output").exists
    assert outgoing[3].all() and not outgoing[1].any(), "the revived neuron's outputs come back"
    assert not structure.population("hidden_1").alive[3], "input structure untouched"


def test_the_regeneration_rule_alone_regrows_ready_synapses_of_alive_targets(rng):
    from sdsnn_bio.development.rules import _regeneration_rule

    structure = make_structure([3, 4, 2], rng)
    projection = structure.projection("input_to_hidden_1")
    projection.exists[0, 1] = False
    projection.weight[0, 1] = 100.0  # far above any percentile
    params = DevelopmentParameters(regrowth_consecutive_steps=0)
    step = start_step(structure, DevelopmentActions(spines=False, regenerate=True), params)
    _regeneration_rule(step)
    assert step.structure.projection("input_to_hidden_1").exists[0, 1], "regrown at N + 1 = 1 step"
    assert step.regeneration_percentile == regeneration_percentile(0, params)
    assert not projection.exists[0, 1], "input structure untouched"


def test_without_revival_regeneration_has_nothing_to_regrow_in_a_fully_connected_network():
    """Package semantics: pruning removes all of a neuron's synapses, so every absent synapse
    targets a pruned neuron; without revival, regeneration can never regrow one (the "+
    regeneration" row of issue 14 therefore equals "+ neuron pruning" in these networks)."""
    structure = tiny_structure()
    params = DevelopmentParameters(initial_pruning_rate=0.5, regrowth_consecutive_steps=0,
                                   output_trophic_gain=0.0, revive_neurons=False)
    state = DevelopmentState.initial(structure, params)
    structure, _, state = develop_structure(structure, DevelopmentActions(spines=False, prune=True), params, state)
    pruned = ~structure.population("hidden_1").alive
    assert pruned.sum() == 2
    incoming = structure.projection("input_to_hidden_1")
    assert incoming.exists[:, ~pruned].all(), "alive neurons keep every input"
    incoming.weight[:, pruned] = 100.0  # latent inputs of the pruned neurons far above any percentile
    regen = DevelopmentActions(spines=False, regenerate=True)
    for _ in range(3):
        structure, record, state = develop_structure(structure, regen, params, state)
        assert record.to_dict()["projections"]["input_to_hidden_1"]["synapses_added"] == 0
    assert np.array_equal(~structure.population("hidden_1").alive, pruned)
    # The same state with revival regrows them at once (N + 1 = 1 step): the rule is not inert.
    revive = DevelopmentParameters(initial_pruning_rate=0.5, regrowth_consecutive_steps=0,
                                   output_trophic_gain=0.0, revive_neurons=True, revival_min_synapses=1)
    _, record, _ = develop_structure(structure, regen, revive, state)
    assert record.to_dict()["projections"]["input_to_hidden_1"]["synapses_added"] == 6

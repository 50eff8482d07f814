"""SD-SNN development rules: pure functions over NumPy arrays (Han et al., arXiv 2211.12219).

Notation: ``w`` a synapse's weight (latent weight if the synapse is absent), ``[r_lo, r_up]`` its
spine range, K = ``consecutive_steps``, ``s`` the development step (0-based), ``s0`` the step at
which pruning (regeneration) began, ``n_l`` / ``alive_l`` the size / surviving neurons of layer l.

Section 1, dendritic-spine plasticity and synaptic constraint (existing synapses only)::

    enlargement   w >= r_up at K consecutive steps   ->  r_up += (sum over the streak of (w - r_up)) / K
                  w <= r_lo at K consecutive steps   ->  r_lo -= (sum over the streak of (r_lo - w)) / K
    shrinkage     |w| < |w|_previous at K consecutive steps  ->  r_up *= f,  r_lo *= f   (f = 0.75)
    a step that breaks a streak resets its counter and its excess sum
    constraint    w <- clip(w, r_lo, r_up)            (from the constraint warm-up on)

Section 2, neuron pruning with a neurotrophic rate (hidden layers)::

    width_ij      = r_up_ij + |r_lo_ij|
    unit(width)   = (width - min) / (max - min) over the layer's existing synapses (0.5 if all equal)
    importance_j  = sum_i exists_ij * unit(width)_ij             (absent synapses count 0)
    pruning set = the floor(p_l * n_l) least important neurons (pruned ones first; equal
          importances: smaller summed |w| of the existing incoming synapses first); its alive,
          never revived members are pruned
    p_l <- clip(p_l + a_l(s - s0) * alive_l / alive_{l+1}, 0, max_pruning_rate)
    a_l(x) = hidden_trophic_gain * exp(-x / hidden_trophic_decay_steps)     (layer l+1 hidden)
    a_l(x) = output_trophic_gain * exp(-x / output_trophic_decay_steps)     (layer l+1 = output),
             output_trophic_floor once x > output_trophic_floor_after_steps

Section 3, synaptic regeneration with an adaptive rate::

    q(s)  = min(q0 + base ** (s - s0), q_max)          (q0 = 60, base = 1.1, q_max = 99)
    theta = percentile_q(w of the projection's existing synapses)
    an absent synapse with an alive presynaptic neuron is ready once w > theta at more than N
    consecutive steps (N = regrowth_consecutive_steps, default K); it regrows if its target is
    alive, or revives a pruned target that has revival_min_synapses ready inputs; it starts from its
    latent weight and keeps the spine range it had.

Choices where the paper and the released code differ (see ``docs/development.md``):

* a pruned neuron loses all its incoming and outgoing synapses and ``alive = False``; spine ranges
  and the latent weights of its outgoing synapses are kept, the latent weights of its incoming
  synapses restart from 0 (``reset_pruned_input_weights``; released code: pruned weights are
  zeroed) and keep learning;
* a pruned neuron is revived (``revive_neurons``) once ``revival_min_synapses`` of its incoming
  synapses are ready to regrow: they regrow, it becomes alive again and its outgoing synapses to
  alive neurons are restored (what pruning took from it; the released code never removed them).
  A revived neuron is never pruned again (as in the released code, whose pruning skips every
  neuron pruned before), so revival cannot loop with pruning; while it stays among the
  ``floor(p_l n_l)`` least important neurons it fills a slot of the pruning set, so revival lowers
  the pruned fraction (regeneration repairs over-pruning);
* only existing synapses' spines update; absent synapses keep their range (streaks reset), so a
  regrown synapse recovers the range it had;
* the regeneration percentile is taken over the projection's existing weights.

``DevelopmentParameters.semantics = "released"`` switches these choices to the released scripts'
reading instead (first step sets the ranges from the trained weights, streaks counted from the
second step, spine rule on every projection but the last over the effective weights, importance
normalised over all synapses, constraint and regeneration percentile over latent weights too,
pruning of a neuron's input only, absent weights zeroed at every pruning step); the table of
every difference, with the learning settings that go with it, is in ``docs/development.md``.

Released-code rates are percentages; our rates are fractions, so the released increments
(``exp(-(s - s0)/5) * ratio`` and ``0.5 * exp(-(s - s0)) * ratio`` percentage points, and the floor
0.0005) appear here as gains 0.01, 0.005 and floor 5e-6.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields, replace

import numpy as np

from ..structure import SPINE_FIELDS, Projection, SpineState, Structure
from .schedule import DevelopmentActions

__all__ = [
    "DevelopmentParameters",
    "DevelopmentState",
    "DevelopmentRecord",
    "SpineUpdate",
    "update_spines",
    "constrain_weights",
    "normalised_spine_width",
    "neuron_importance",
    "neurons_to_prune",
    "trophic_factor",
    "adapt_pruning_rate",
    "regeneration_percentile",
    "regeneration_threshold",
    "regrowth_step",
    "develop_structure",
]


# ---------------------------------------------------------------------------------------- parameters
#: Readings of the rules (:class:`DevelopmentParameters`): this package's, or the released scripts'.
SEMANTICS = ("package", "released")

def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class DevelopmentParameters:
    """Constants of the SD-SNN rules (defaults: the released code, converted to fractions).

    Parameters
    ----------
    consecutive_steps : int
        K: consecutive development steps that trigger enlargement or shrinkage (released: 18).
    shrink_factor : float
        Both spine bounds are multiplied by it on shrinkage, in (0, 1] (released: 0.75).
    initial_pruning_rate : float
        p_l of every hidden layer when pruning begins, in [0, 1] (released: 0.45 for the N-MNIST
        fully-connected hidden layer).
    max_pruning_rate : float
        p_l is clipped to ``[0, max_pruning_rate]``, in [0, 1) (ours; the released code has no cap).
    hidden_trophic_gain, hidden_trophic_decay_steps : float
        Neurotrophic increment of a layer projecting to a hidden layer:
        ``gain * exp(-(s - s0) / decay)`` (released: 1 percentage point, i.e. 0.01, and 5 steps).
    output_trophic_gain, output_trophic_decay_steps : float
        The same for the last hidden layer (released: 0.5 percentage point = 0.005, and 1 step).
    output_trophic_floor : float
        Increment factor of the last hidden layer once ``s - s0 > output_trophic_floor_after_steps``
        (released: 0.0005 percentage point = 5e-6, after epoch 60 = s0 + 23).
    output_trophic_floor_after_steps : int
        See above (released: 23).
    regeneration_initial_percentile, regeneration_percentile_base, regeneration_max_percentile : float
        ``q = min(q0 + base ** (s - s0), q_max)`` (released fully-connected layer: 60, 1.1, 99).
    regrowth_consecutive_steps : int or None
        N: an absent synapse regrows after more than N consecutive steps above the percentile
        (released: K). None: K.
    revive_neurons : bool
        Whether regeneration may regrow incoming synapses of pruned neurons (and so revive them).
    revival_min_synapses : int
        A pruned neuron is revived once this many of its incoming synapses are ready to regrow (at
        most the number of alive presynaptic neurons). Released code: a fully-connected neuron
        counts as pruned while fewer than 50 incoming synapses remain.
    reset_pruned_input_weights : bool
        When a neuron is pruned, the latent weights of its incoming synapses restart from 0
        (released code: pruned weights are zeroed), so that regrowing them (and reviving the neuron)
        needs evidence gathered after the pruning. Without it, a pruned neuron's large incoming
        weights beat the regeneration percentile at once and the neuron is revived N + 1 steps later.
    constrain_last_projection : bool
        Whether the synaptic constraint clips the weights of the projection into the output layer
        too (default; released MNIST, N-MNIST and DVS-Gesture scripts). The released CIFAR-10
        script never clips it.
    trophic_min_synapses : int or None
        Who counts as alive in the neurotrophic ratio ``alive_l / alive_{l+1}`` (hidden layers):
        None (default), the neurons with ``alive = True``; an integer n, the neurons holding at
        least n existing incoming synapses (released scripts: 20 for the N-MNIST, MNIST and
        DVS-Gesture fully-connected layer, 50 for CIFAR-10's, so that a pruned neuron with a few
        regrown synapses still counts as pruned).
    layer_initial_pruning_rates : dict[str, float]
        p_l of the named hidden populations when pruning begins, overriding
        ``initial_pruning_rate`` for them (released SCNNs: conv2's channels start at 0.05, fc1's
        neurons at 0.45).
    undeveloped_layers : tuple of str
        Hidden populations that development leaves alone: never pruned, and the projection into
        them gets no spine rule, constraint or regeneration (released SCNNs: conv1, whose weights
        the released scripts never mask or clip).
    semantics : {"package", "released"}
        ``"package"``: the rules as described in this module. ``"released"``: the released SD-SNN
        scripts' reading of the same rules (:func:`develop_structure`; every difference is listed
        in one table in ``docs/development.md``): the first development step only sets the spine
        ranges from the weights trained so far; streaks count from the second consecutive step;
        the spine rule sees the effective weights of every synapse and runs on every projection
        but the last (whose range stays the initial one); importance normalises the widths over
        all synapses; the constraint clips latent weights too; the regeneration percentile is
        taken over all weights, latent included; pruning removes a neuron's incoming synapses only;
        every pruning step zeroes the weights of all absent synapses.
    """

    consecutive_steps: int = 18
    shrink_factor: float = 0.75
    initial_pruning_rate: float = 0.45
    max_pruning_rate: float = 0.9
    hidden_trophic_gain: float = 0.01
    hidden_trophic_decay_steps: float = 5.0
    output_trophic_gain: float = 0.005
    output_trophic_decay_steps: float = 1.0
    output_trophic_floor: float = 5e-6
    output_trophic_floor_after_steps: int = 23
    regeneration_initial_percentile: float = 60.0
    regeneration_percentile_base: float = 1.1
    regeneration_max_percentile: float = 99.0
    regrowth_consecutive_steps: int | None = None
    revive_neurons: bool = True
    revival_min_synapses: int = 50
    reset_pruned_input_weights: bool = True
    constrain_last_projection: bool = True
    trophic_min_synapses: int | None = None
    layer_initial_pruning_rates: dict = field(default_factory=dict)
    undeveloped_layers: tuple = ()
    semantics: str = "package"

    def __post_init__(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise ValueError(
                f"DevelopmentParameters.{name}: expected {expected}, got {getattr(self, name)!r}"
            )

        if not _is_integer(self.consecutive_steps) or self.consecutive_steps < 1:
            fail("consecutive_steps", "an integer >= 1")
        if not _is_number(self.shrink_factor) or not 0.0 < self.shrink_factor <= 1.0:
            fail("shrink_factor", "a number in (0, 1]")
        if not _is_number(self.max_pruning_rate) or not 0.0 <= self.max_pruning_rate < 1.0:
            fail("max_pruning_rate", "a number in [0, 1)")
        if not _is_number(self.initial_pruning_rate) or not 0.0 <= self.initial_pruning_rate <= 1.0:
            fail("initial_pruning_rate", "a number in [0, 1]")
        if self.initial_pruning_rate > self.max_pruning_rate:
            fail("initial_pruning_rate", f"a number <= max_pruning_rate ({self.max_pruning_rate})")
        for name in ("hidden_trophic_gain", "output_trophic_gain", "output_trophic_floor"):
            if not _is_number(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "a number >= 0")
        for name in ("hidden_trophic_decay_steps", "output_trophic_decay_steps"):
            if not _is_number(getattr(self, name)) or getattr(self, name) <= 0:
                fail(name, "a number of steps > 0")
        if not _is_integer(self.revival_min_synapses) or self.revival_min_synapses < 1:
            fail("revival_min_synapses", "an integer >= 1")
        if not _is_integer(self.output_trophic_floor_after_steps) or self.output_trophic_floor_after_steps < 0:
            fail("output_trophic_floor_after_steps", "an integer >= 0")
        for name in ("regeneration_initial_percentile", "regeneration_max_percentile"):
            if not _is_number(getattr(self, name)) or not 0.0 <= getattr(self, name) <= 100.0:
                fail(name, "a percentile in [0, 100]")
        if self.regeneration_initial_percentile > self.regeneration_max_percentile:
            fail("regeneration_initial_percentile",
                 f"a percentile <= regeneration_max_percentile ({self.regeneration_max_percentile})")
        if not _is_number(self.regeneration_percentile_base) or self.regeneration_percentile_base <= 0:
            fail("regeneration_percentile_base", "a number > 0")
        if self.regrowth_consecutive_steps is not None and (
            not _is_integer(self.regrowth_consecutive_steps) or self.regrowth_consecutive_steps < 0
        ):
            fail("regrowth_consecutive_steps", "an integer >= 0 or None (= consecutive_steps)")
        for name in ("revive_neurons", "reset_pruned_input_weights", "constrain_last_projection"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "true or false")
        if self.trophic_min_synapses is not None and (
            not _is_integer(self.trophic_min_synapses) or self.trophic_min_synapses < 1
        ):
            fail("trophic_min_synapses", "an integer >= 1 or None (count the alive neurons)")
        if self.semantics not in SEMANTICS:
            fail("semantics", f"one of {list(SEMANTICS)}")
        if not isinstance(self.layer_initial_pruning_rates, dict) or not all(
            isinstance(k, str) and _is_number(v) and 0.0 <= v <= self.max_pruning_rate
            for k, v in self.layer_initial_pruning_rates.items()
        ):
            fail("layer_initial_pruning_rates",
                 f"a table of population name -> rate in [0, max_pruning_rate = {self.max_pruning_rate}]")
        if isinstance(self.undeveloped_layers, (list, tuple)):
            object.__setattr__(self, "undeveloped_layers", tuple(self.undeveloped_layers))
        if not isinstance(self.undeveloped_layers, tuple) or not all(
            isinstance(v, str) for v in self.undeveloped_layers
        ):
            fail("undeveloped_layers", "a list of hidden population names")

    def initial_rate(self, population: str) -> float:
        """p_l of ``population`` when pruning begins."""
        return float(self.layer_initial_pruning_rates.get(population, self.initial_pruning_rate))

    def check_layers(self, structure: Structure) -> None:
        """Check the layer names against ``structure``.

        Refuse layer names (``layer_initial_pruning_rates``, ``undeveloped_layers``) that are not
        hidden populations of ``structure``.
        """
        hidden = [p.name for p in structure.hidden_populations]
        for name, values in (("layer_initial_pruning_rates", self.layer_initial_pruning_rates),
                             ("undeveloped_layers", self.undeveloped_layers)):
            unknown = sorted(set(values) - set(hidden))
            if unknown:
                raise ValueError(
                    f"DevelopmentParameters.{name}: {unknown} are not hidden populations of the "
                    f"network; expected names among {hidden}"
                )

    @property
    def released(self) -> bool:
        """True with the released scripts' semantics (``semantics = "released"``)."""
        return self.semantics == "released"

    @property
    def initialisation_steps(self) -> int:
        """Development steps spent setting the spine ranges before any rule runs (released: 1)."""
        return 1 if self.released else 0

    @property
    def regrowth_steps(self) -> int:
        """N, with None resolved to K."""
        if self.regrowth_consecutive_steps is None:
            return int(self.consecutive_steps)
        return int(self.regrowth_consecutive_steps)

    def to_dict(self) -> dict:
        """JSON-ready mapping of every field."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __hash__(self) -> int:  # a dict field: hash its items
        return hash(tuple((f.name, tuple(sorted(v.items())) if isinstance(v, dict) else v)
                          for f in fields(self) for v in [getattr(self, f.name)]))


# ---------------------------------------------------------------------------------------- section 1
@dataclass(frozen=True)
class SpineUpdate:
    """Which spines changed at one update (boolean masks of the projection's shape)."""

    upper_enlarged: np.ndarray
    lower_enlarged: np.ndarray
    shrunk: np.ndarray


@dataclass(frozen=True)
class _SpineEvents:
    """What one spine update did, as flat indices (row-major) of the projection's synapses.

    ``clip_candidates`` holds the existing synapses whose weight may lie on or outside the new
    range (those at or beyond a bound at the start of the step and those whose range shrank):
    every other existing weight that is not NaN is strictly inside its range, where ``np.clip``
    leaves it as it is.
    """

    upper_enlarged: np.ndarray
    lower_enlarged: np.ndarray
    shrunk: np.ndarray
    clip_candidates: np.ndarray


def _edge_streak(index, previous_streak, previous_excess, excess, k, released=False):
    """Counter and excess sum after a step where the synapses at flat ``index`` sit at an edge.

    Few synapses sit at an edge: the new arrays are zeros written at ``index`` only.
    ``released``: the released scripts count a synapse only when it sat at the edge at the
    previous step too (the intersection of this step's and the previous step's sets), so the
    counter stored here is one more than theirs, the first step's excess is not summed and the
    rule fires at K + 1 consecutive steps (see :func:`_restart_value`).
    """
    counter = np.zeros(previous_streak.shape, np.int32)
    total = np.zeros(previous_excess.shape)
    before = np.take(previous_streak, index)
    streak = before + 1
    np.put(counter, index, streak)
    if released:
        np.put(total, index, np.where(before > 0, np.take(previous_excess, index) + excess, 0.0))
    else:
        np.put(total, index, np.take(previous_excess, index) + excess)
    fired = index[np.asarray(streak, np.int32) >= k + int(released)]
    return counter, total, fired


def _restart_value(released: bool) -> int:
    """Streak stored after a rule fired.

    Streak stored after a rule fired: 0; released: 1 (the synapse is still in the previous
    step's set, so its next step at the edge counts at once).
    """
    return 1 if released else 0


def _update_spines(weight: np.ndarray, exists: np.ndarray, spine: SpineState, consecutive_steps: int,
                   shrink_factor: float, released: bool = False) -> tuple[SpineState, _SpineEvents]:
    """:func:`update_spines` returning flat indices (and the constraint's candidates)."""
    weight = np.asarray(weight, dtype=np.float64)
    exists = np.asarray(exists, dtype=bool)
    k = int(consecutive_steps)
    upper, lower = spine.upper, spine.lower  # copied below only if a bound moves

    at_upper = np.greater_equal(weight, upper)
    at_upper &= exists
    at_lower = np.less_equal(weight, lower)
    at_lower &= exists
    upper_index = np.flatnonzero(at_upper)
    lower_index = np.flatnonzero(at_lower)
    upper_streak, upper_excess, fired_upper = _edge_streak(
        upper_index, spine.upper_streak, spine.upper_excess,
        np.take(weight, upper_index) - np.take(upper, upper_index), k, released)
    lower_streak, lower_excess, fired_lower = _edge_streak(
        lower_index, spine.lower_streak, spine.lower_excess,
        np.take(lower, lower_index) - np.take(weight, lower_index), k, released)
    # Flat indices address row-major positions: np.take/np.put (faster than ``.flat``).
    if fired_upper.size:
        upper = upper.copy()
        np.put(upper, fired_upper, np.take(upper, fired_upper) + np.take(upper_excess, fired_upper) / k)
        np.put(upper_streak, fired_upper, _restart_value(released))
        np.put(upper_excess, fired_upper, 0.0)
    if fired_lower.size:
        lower = lower.copy()
        np.put(lower, fired_lower, np.take(lower, fired_lower) - np.take(lower_excess, fired_lower) / k)
        np.put(lower_streak, fired_lower, _restart_value(released))
        np.put(lower_excess, fired_lower, 0.0)

    magnitude = np.abs(weight)
    decreasing = magnitude < spine.previous_abs_weight
    decreasing &= exists
    shrink_streak = spine.shrink_streak + np.int32(1)
    shrink_streak *= decreasing
    shrunk = shrink_streak >= k + int(released)
    fired_shrink = np.flatnonzero(shrunk) if shrunk.any() else np.zeros(0, np.intp)
    if fired_shrink.size:
        upper = upper.copy() if upper is spine.upper else upper
        lower = lower.copy() if lower is spine.lower else lower
        np.put(upper, fired_shrink, np.take(upper, fired_shrink) * shrink_factor)
        np.put(lower, fired_shrink, np.take(lower, fired_shrink) * shrink_factor)
        np.put(shrink_streak, fired_shrink, _restart_value(released))

    at_upper |= at_lower
    np.put(at_upper, fired_shrink, True)
    new = SpineState(
        lower=lower, upper=upper, upper_streak=upper_streak, upper_excess=upper_excess,
        lower_streak=lower_streak, lower_excess=lower_excess,
        shrink_streak=shrink_streak.astype(np.int32, copy=False),
        previous_abs_weight=magnitude, regrowth_streak=spine.regrowth_streak,
    )
    return new, _SpineEvents(fired_upper, fired_lower, fired_shrink, np.flatnonzero(at_upper))


def _flat_mask(shape, index) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    np.put(mask, index, True)
    return mask


def update_spines(weight: np.ndarray, exists: np.ndarray, spine: SpineState,
                  consecutive_steps: int, shrink_factor: float = 0.75) -> tuple[SpineState, SpineUpdate]:
    """One step of spine enlargement and shrinkage (section 1); returns a new state.

    Only existing synapses update; absent synapses keep their range and their streaks restart
    (counter and excess sum 0). ``previous_abs_weight`` becomes ``|w|`` for every synapse. The new
    state shares the arrays this step leaves unchanged with ``spine`` (``regrowth_streak``, and
    ``lower``/``upper`` when no bound moves).
    Enlargement of both bounds is evaluated against the bounds at the start of the step; shrinkage
    then multiplies the (possibly enlarged) bounds, as in the released code.

    Parameters
    ----------
    weight : ndarray, shape (n_source, n_target)
        Current weights (latent for absent synapses).
    exists : ndarray of bool
    spine : SpineState
        Not modified.
    consecutive_steps : int
        K.
    shrink_factor : float
        f in (0, 1].
    """
    new, events = _update_spines(weight, exists, spine, consecutive_steps, shrink_factor)
    shape = np.shape(weight)
    return new, SpineUpdate(_flat_mask(shape, events.upper_enlarged),
                            _flat_mask(shape, events.lower_enlarged), _flat_mask(shape, events.shrunk))


def _not_strictly_inside(weight: np.ndarray, exists: np.ndarray, spine: SpineState) -> np.ndarray:
    """Flat indices of the existing synapses whose weight is on a bound, outside its range or NaN.

    ``np.clip`` returns every other weight bit for bit as it is.
    """
    inside = np.greater(weight, spine.lower)
    inside &= np.less(weight, spine.upper)
    outside = np.logical_not(inside, out=inside)
    outside &= exists
    return np.flatnonzero(outside)


def _clip_at(weight: np.ndarray, spine: SpineState, index: np.ndarray):
    """``np.clip`` of the weights at flat ``index`` into their ranges, without writing them.

    Returns
    -------
    index : ndarray
        ``index`` without the weights strictly inside their range (left as they are).
    clipped : ndarray
        The clipped weights at ``index``.
    changed : ndarray of bool
        Which of them differ bit for bit from the weight (to be written).
    n_clipped : int
        How many differ in value (``weights_clipped``).
    """
    index = np.asarray(index, dtype=np.intp)
    value = np.take(weight, index)
    lower = np.take(spine.lower, index)
    upper = np.take(spine.upper, index)
    inside = (value > lower) & (value < upper)
    if inside.any():
        keep = ~inside
        index, value, lower, upper = index[keep], value[keep], lower[keep], upper[keep]
    clipped = np.clip(value, lower, upper)
    if clipped.dtype != value.dtype:  # float32 weights (the learner's dtype), float64 ranges
        clipped = _inside_in_type(clipped, lower, upper, value.dtype)
    unsigned = np.dtype(f"u{value.dtype.itemsize}")
    changed = clipped.view(unsigned) != value.view(unsigned)
    return index, clipped, changed, int(np.count_nonzero(clipped != value))


def _inside_in_type(clipped: np.ndarray, lower: np.ndarray, upper: np.ndarray, dtype) -> np.ndarray:
    """Clipped weights in the weights' (narrower) type, rounded towards the inside of their range.

    A bound that the type cannot hold becomes the nearest number of the type inside ``[lower,
    upper]``, so the constraint never leaves a weight outside its range; such a weight then sits
    strictly inside, within one spacing of the type (float32: relative 6e-8) of its bound.
    """
    narrow = clipped.astype(dtype)
    above = narrow > upper
    narrow[above] = np.nextafter(narrow[above], dtype.type(-np.inf))
    below = narrow < lower
    narrow[below] = np.nextafter(narrow[below], dtype.type(np.inf))
    return narrow


def constrain_weights(weight: np.ndarray, exists: np.ndarray, spine: SpineState) -> tuple[np.ndarray, int]:
    """Clip existing weights into their spine range ``[lower, upper]`` (section 1).

    Returns the new weights (latent weights of absent synapses unchanged) and how many weights
    were clipped.
    """
    weight = np.asarray(weight)  # float32 stays float32 (clipped into the range in float32)
    if weight.dtype != np.float32:
        weight = weight.astype(np.float64, copy=False)
    exists = np.asarray(exists, dtype=bool)
    index, clipped, changed, n_clipped = _clip_at(weight, spine, _not_strictly_inside(weight, exists, spine))
    new = weight.copy()
    np.put(new, index[changed], clipped[changed])
    if _any_nan(weight):
        n_clipped += _absent_nan(weight, exists)
    return new, n_clipped


def _any_nan(weight: np.ndarray) -> bool:
    return bool(weight.size) and bool(np.isnan(np.max(weight)))


def _absent_nan(weight: np.ndarray, exists: np.ndarray) -> int:
    """NaN latent weights, which the clip count has always included (NaN != NaN)."""
    return int(np.count_nonzero(np.isnan(weight) & ~exists))


# ---------------------------------------------------------------------------------------- section 2
def normalised_spine_width(spine: SpineState, exists: np.ndarray, over_all: bool = False) -> np.ndarray:
    """``unit(upper + |lower|)`` over the existing synapses, 0 for absent synapses.

    ``unit`` is min-max normalisation over the projection's existing synapses (``over_all``: over
    all its synapses, absent ones included, as the released scripts do); if they all have the same
    width, every existing synapse gets 0.5 (released code's ``unit``).
    """
    exists = np.asarray(exists, dtype=bool)
    width = np.abs(spine.lower)
    width += spine.upper
    if not exists.any():
        return np.zeros(width.shape)
    present = width.ravel() if over_all else width[exists]  # one selection for both extremes
    low, high = float(present.min()), float(present.max())
    if high > low:
        width -= low
        width *= 1.0 / (high - low)
    else:
        width[...] = 0.5
    width *= exists
    return width


def neuron_importance(spine: SpineState, exists: np.ndarray, over_all: bool = False) -> np.ndarray:
    """Importance of each postsynaptic neuron: summed normalised width of its incoming spines.

    Parameters
    ----------
    spine, exists
        Of the projection *into* the layer, shape (n_source, n_target).
    over_all : bool
        Normalise the widths over all synapses (released scripts), not only the existing ones.

    Returns
    -------
    ndarray, shape (n_target,)
    """
    return normalised_spine_width(spine, exists, over_all).sum(axis=0)


def neurons_to_prune(importance: np.ndarray, alive: np.ndarray, protected: np.ndarray,
                     rate: float, tie_breaker: np.ndarray | None = None) -> np.ndarray:
    """Indices of the neurons to prune at rate ``rate`` (sorted; empty if none).

    The ``k = floor(rate * n)`` least important neurons (at most ``n - 1``: one neuron always
    survives) form the pruning set: pruned neurons first, then alive ones by importance, equal
    importances by ``tie_breaker`` (smaller first; :func:`develop_structure` passes the summed
    ``|w|`` of the incoming synapses), then by index. Its alive members that are not ``protected``
    are pruned. Without protected neurons the pruned fraction becomes exactly ``k / n``. A protected
    (revived) neuron is never pruned again; while it stays among the k least important it keeps its
    slot, so the layer stays below the rate (regeneration repairs over-pruning), as in the released
    code, whose pruning skips the neurons it pruned before.
    """
    importance = np.asarray(importance, dtype=np.float64)
    tie_breaker = np.zeros(importance.shape) if tie_breaker is None else np.asarray(tie_breaker, np.float64)
    alive = np.asarray(alive, dtype=bool)
    protected = np.asarray(protected, dtype=bool)
    n = alive.size
    k = min(int(math.floor(float(rate) * n + 1e-9)), n - 1)
    if k <= n - int(np.count_nonzero(alive)):
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(n), tie_breaker, importance, alive))
    bottom = order[:k]
    return np.sort(bottom[alive[bottom] & ~protected[bottom]]).astype(np.int64)


def trophic_factor(steps_since_start: int, target_is_output: bool, params: DevelopmentParameters) -> float:
    """``a_l(s - s0)``: the decaying factor of the neurotrophic increment (see module docstring)."""
    x = float(steps_since_start)
    if target_is_output:
        if x > params.output_trophic_floor_after_steps:
            return float(params.output_trophic_floor)
        return params.output_trophic_gain * math.exp(-x / params.output_trophic_decay_steps)
    return params.hidden_trophic_gain * math.exp(-x / params.hidden_trophic_decay_steps)


def adapt_pruning_rate(rate: float, steps_since_start: int, alive_here: int, alive_target: int,
                       target_is_output: bool, params: DevelopmentParameters) -> float:
    """Neurotrophic adaptation: ``clip(p + a(s - s0) * alive_l / alive_{l+1}, 0, max_pruning_rate)``."""
    if alive_target <= 0:
        raise ValueError(f"adapt_pruning_rate: alive_target must be >= 1, got {alive_target}")
    pressure = alive_here / alive_target
    new = rate + trophic_factor(steps_since_start, target_is_output, params) * pressure
    return float(min(max(new, 0.0), params.max_pruning_rate))


# ---------------------------------------------------------------------------------------- section 3
def regeneration_percentile(steps_since_start: int, params: DevelopmentParameters) -> float:
    """``q = min(q0 + base ** (s - s0), q_max)``."""
    try:
        grown = params.regeneration_percentile_base ** float(steps_since_start)
    except OverflowError:
        grown = math.inf
    return float(min(params.regeneration_initial_percentile + grown, params.regeneration_max_percentile))


def regeneration_threshold(weight: np.ndarray, exists: np.ndarray, q: float) -> float | None:
    """The q-th percentile of the existing weights (None if the projection has none)."""
    present = np.asarray(weight, dtype=np.float64)[np.asarray(exists, dtype=bool)]
    n = present.size
    if n == 0:
        return None
    # np.percentile's default ("linear") definition with one partition instead of two.
    position = (n - 1) * float(q) / 100.0
    below = min(int(math.floor(position)), n - 1)
    fraction = position - below
    present.partition(below)  # ``present`` is our copy
    low = float(present[below])
    if fraction == 0.0 or below + 1 >= n:
        return low
    high = float(present[below + 1:].min())
    return low + (high - low) * fraction if fraction < 0.5 else high - (high - low) * (1.0 - fraction)


def regrowth_step(weight: np.ndarray, exists: np.ndarray, eligible: np.ndarray,
                  regrowth_streak: np.ndarray, threshold: float | None,
                  regrowth_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Count steps above the threshold and find the synapses ready to regrow (section 3).

    A synapse's streak grows while it is absent, eligible and ``w > threshold``; any other step
    resets it. Synapses whose streak exceeds ``regrowth_steps`` are ready; the caller regrows them
    (and restarts their streak), or keeps them waiting (a pruned target neuron that does not
    have enough ready synapses to be revived, see :func:`develop_structure`).

    Returns
    -------
    streak : ndarray of int32
        New regrowth streaks.
    ready : ndarray of bool
        Synapses ready to regrow (always absent).
    """
    streak, ready = _regrowth_step(weight, exists, eligible, regrowth_streak, threshold, regrowth_steps)
    return streak, _flat_mask(streak.shape, ready)


def _regrowth_step(weight, exists, eligible, regrowth_streak, threshold, regrowth_steps):
    """:func:`regrowth_step` returning the flat indices of the ready synapses.

    Few absent synapses are above the threshold: the new streaks are zeros written there only.
    """
    weight = np.asarray(weight, dtype=np.float64)
    streak = np.zeros(weight.shape, np.int32)
    if threshold is None:
        return streak, np.zeros(0, np.intp)
    above = np.greater(weight, threshold)
    above &= np.asarray(eligible, dtype=bool)
    above &= np.logical_not(exists)
    index = np.flatnonzero(above)
    np.put(streak, index, np.take(regrowth_streak, index) + 1)
    return streak, index[np.take(streak, index) > int(regrowth_steps)]


# ---------------------------------------------------------------------------------------- state
@dataclass(frozen=True)
class DevelopmentState:
    """What the rules remember between development steps.

    Attributes
    ----------
    step : int
        Development steps done so far (the index of the next step).
    pruning_rates : dict[str, float]
        p_l of every hidden population.
    pruning_started_step, regeneration_started_step : int or None
        s0 of each rule: the first step at which it ran.
    protected : dict[str, ndarray of bool]
        Revived neurons of every hidden population (never pruned again).
    """

    step: int
    pruning_rates: dict
    pruning_started_step: int | None = None
    regeneration_started_step: int | None = None
    protected: dict = field(default_factory=dict)

    @classmethod
    def initial(cls, structure: Structure, params: DevelopmentParameters) -> "DevelopmentState":
        """The state before the first development step: every layer at its initial pruning rate."""
        hidden = structure.hidden_populations
        return cls(
            step=0,
            pruning_rates={p.name: params.initial_rate(p.name) for p in hidden},
            protected={p.name: np.zeros(p.n_units, dtype=bool) for p in hidden},
        )

    def to_dict(self) -> dict:
        """JSON-ready (revived neurons as index lists)."""
        return {
            "step": int(self.step),
            "pruning_rates": {k: float(v) for k, v in self.pruning_rates.items()},
            "pruning_started_step": self.pruning_started_step,
            "regeneration_started_step": self.regeneration_started_step,
            "protected": {k: np.flatnonzero(v).tolist() for k, v in self.protected.items()},
            "population_sizes": {k: int(v.size) for k, v in self.protected.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "DevelopmentState":
        """The state written by :meth:`to_dict` (checkpoints)."""
        try:
            protected = {}
            for name, size in data["population_sizes"].items():
                mask = np.zeros(int(size), dtype=bool)
                mask[np.asarray(data["protected"][name], dtype=np.int64)] = True
                protected[name] = mask
            return cls(
                step=int(data["step"]),
                pruning_rates={k: float(v) for k, v in data["pruning_rates"].items()},
                pruning_started_step=data["pruning_started_step"],
                regeneration_started_step=data["regeneration_started_step"],
                protected=protected,
            )
        except KeyError as err:
            raise ValueError(
                f"DevelopmentState.from_dict: missing key {err.args[0]!r}; expected the keys of "
                "DevelopmentState.to_dict()"
            ) from None


@dataclass(frozen=True)
class DevelopmentRecord:
    """What one development step did.

    ``projections[name]`` and ``populations[name]`` hold JSON-ready counts; ``importance`` holds
    the neuron importance of the layers that were ranked for pruning at this step (layers that
    had already reached their rate are not ranked; not in :meth:`to_dict`).
    """

    step: int
    actions: DevelopmentActions
    regeneration_percentile: float | None
    pruning_rates: dict
    projections: dict
    populations: dict
    importance: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready (without ``importance``)."""
        return {
            "development_step": int(self.step),
            "actions": self.actions.to_dict(),
            "regeneration_percentile": self.regeneration_percentile,
            "pruning_rates": {k: float(v) for k, v in self.pruning_rates.items()},
            "projections": self.projections,
            "populations": self.populations,
        }


# ---------------------------------------------------------------------------------------- one step
_STREAKS = ("upper_streak", "lower_streak", "shrink_streak", "regrowth_streak", "upper_excess",
            "lower_excess")


class _CopyOnWrite:
    """Arrays of the input structure are copied before the first in-place change, never modified."""

    def __init__(self, structure: Structure) -> None:
        self.shared = {id(a) for p in structure.projections
                       for a in (p.weight, p.exists, *(getattr(p.spine, n) for n in SPINE_FIELDS))}

    def own(self, obj, name: str) -> np.ndarray:
        array = getattr(obj, name)
        if id(array) in self.shared:
            array = array.copy()
            setattr(obj, name, array)
        return array

    def forget_streaks(self, spine: SpineState, index) -> None:
        """Restart every streak (and excess sum) of the synapses selected by ``index``."""
        for name in _STREAKS:
            self.own(spine, name)[index] = 0


def _shallow_copy(structure: Structure) -> Structure:
    """New records around the same arrays (alive and exists masks copied: they are small)."""
    populations = tuple(p.copy() for p in structure.populations)
    projections = tuple(
        Projection(p.name, p.source, p.target, p.weight, p.exists.copy(),
                   SpineState(**{n: getattr(p.spine, n) for n in SPINE_FIELDS}), p.geometry)
        for p in structure.projections
    )
    return Structure(populations, projections)


def _trophic_count(structure: Structure, name: str, params: DevelopmentParameters) -> int:
    """Neurons of hidden population ``name`` that count as alive in the neurotrophic ratio."""
    if params.trophic_min_synapses is None:
        return structure.population(name).n_alive
    incoming = structure.projection_into(name).exists
    return int(np.count_nonzero(np.count_nonzero(incoming, axis=0) >= params.trophic_min_synapses))


def _incoming_strength(projection: Projection) -> np.ndarray:
    """Summed ``|w|`` of each target neuron's existing incoming synapses (the pruning tie-breaker).

    Equal, element for element, to ``np.abs(projection.effective_weight()).sum(axis=0)``.
    """
    magnitude = np.abs(projection.weight)
    np.copyto(magnitude, 0.0, where=~projection.exists)
    return magnitude.sum(axis=0)


def _initialise_ranges(structure: Structure, params: DevelopmentParameters,
                       state: DevelopmentState) -> tuple[Structure, DevelopmentRecord, DevelopmentState]:
    """Released semantics' first step: spine ranges from the trained weights.

    Released semantics, first development step: set every synapse's spine range to
    ``[-max(w), max(w)]`` of its projection's current (trained) weights; nothing else runs.
    """
    new = _shallow_copy(structure)
    projections = {}
    for projection in new.projections:
        weight = projection.effective_weight()
        top = float(np.max(weight)) if weight.size else 0.0
        shape = projection.shape
        projection.spine = SpineState(
            lower=np.full(shape, -top), upper=np.full(shape, top),
            upper_streak=np.zeros(shape, np.int32), upper_excess=np.zeros(shape),
            lower_streak=np.zeros(shape, np.int32), lower_excess=np.zeros(shape),
            shrink_streak=np.zeros(shape, np.int32), previous_abs_weight=np.abs(weight),
            regrowth_streak=np.zeros(shape, np.int32),
        )
        projections[projection.name] = {
            "synapses": projection.n_synapses, "synapses_removed": 0, "synapses_added": 0,
            "upper_enlarged": 0, "lower_enlarged": 0, "spines_shrunk": 0, "weights_clipped": 0,
            "regeneration_threshold": None,
        }
    populations = {}
    for population in new.hidden_populations:
        target = new.population(new.projection_from(population.name).target)
        populations[population.name] = {
            "alive": population.n_alive, "pruned": [], "revived": [],
            "trophic_pressure": population.n_alive / target.n_alive,
        }
    rates = {name: float(rate) for name, rate in state.pruning_rates.items()}
    nothing = DevelopmentActions(spines=False)
    record = DevelopmentRecord(state.step + 1, nothing, None, dict(rates), projections, populations)
    return new, record, replace(state, step=state.step + 1)


@dataclass
class _Step:
    """One development step in progress: what the named rules read and write.

    :func:`develop_structure` builds it, calls the rules due in the paper's order, then turns it
    into a :class:`DevelopmentRecord`. A rule is a function ``rule(step) -> None`` that changes
    ``step.structure`` (through ``step.copy_on_write`` for weights and spine arrays, which the
    input structure shares) and notes what it did in the counters below.

    Attributes
    ----------
    index : int
        s, the development step (0-based).
    actions : DevelopmentActions
        The rules due at this step.
    params : DevelopmentParameters
    structure : Structure
        The new structure (records around the input's arrays; ``alive`` and ``exists`` copied).
    copy_on_write : _CopyOnWrite
        Owner of the arrays shared with the input structure.
    exists_before, alive_before : dict[str, ndarray of bool]
        The input structure's ``exists`` per projection and ``alive`` per population.
    hidden : list of str
        Hidden populations, input to output.
    pruned_layers : list of str
        Hidden populations that pruning may change (not ``undeveloped_layers``).
    developed : list of Projection
        Projections of ``structure`` that the spine rule, constraint and regeneration see.
    constrained : list of Projection
        Projections the constraint clips (``developed`` without the last unless
        ``constrain_last_projection``).
    protected : dict[str, ndarray of bool]
        Revived neurons per hidden population (never pruned again).
    rates : dict[str, float]
        p_l per hidden population.
    pruning_started, regeneration_started : int or None
        s0 of pruning and of regeneration.
    counts : dict[str, dict]
        Per projection: spine events, weights clipped, regeneration threshold.
    clip_candidates : dict[str, ndarray or None]
        Per projection, flat indices of the weights the spine rule left on or beyond a bound.
    on_bound, has_nan : dict
        Per constrained projection (package semantics): the weights the constraint left on a
        bound, and whether its weights hold a NaN (for the clip of regrown synapses).
    regeneration_percentile : float or None
        q of this step (None without regeneration).
    importance : dict[str, ndarray]
        Neuron importance of the layers ranked for pruning at this step.
    """

    index: int
    actions: DevelopmentActions
    params: DevelopmentParameters
    structure: Structure
    copy_on_write: _CopyOnWrite
    exists_before: dict
    alive_before: dict
    hidden: list
    pruned_layers: list
    developed: list
    constrained: list
    protected: dict
    rates: dict
    pruning_started: int | None
    regeneration_started: int | None
    counts: dict
    clip_candidates: dict
    on_bound: dict = field(default_factory=dict)
    has_nan: dict = field(default_factory=dict)
    regeneration_percentile: float | None = None
    importance: dict = field(default_factory=dict)

    @property
    def released(self) -> bool:
        """True with the released scripts' semantics."""
        return self.params.released

    @classmethod
    def start(cls, structure: Structure, actions: DevelopmentActions, params: DevelopmentParameters,
              state: DevelopmentState) -> "_Step":
        """The step ``state.step`` on a shallow copy of ``structure``."""
        new = _shallow_copy(structure)
        hidden = [p.name for p in new.hidden_populations]
        protected = {name: np.asarray(state.protected.get(name, np.zeros(new.population(name).n_units, bool)),
                                      dtype=bool).copy() for name in hidden}
        rates = dict(state.pruning_rates)
        for name in hidden:
            rates.setdefault(name, params.initial_rate(name))
        if params.undeveloped_layers or params.layer_initial_pruning_rates:
            params.check_layers(structure)
        # Populations pruned, and projections shaped, by development (released SCNNs leave conv1 alone).
        developed = [p for p in new.projections if p.target not in params.undeveloped_layers]
        return cls(
            index=int(state.step), actions=actions, params=params, structure=new,
            copy_on_write=_CopyOnWrite(structure),
            exists_before={p.name: p.exists for p in structure.projections},
            alive_before={p.name: p.alive for p in structure.populations},
            hidden=hidden,
            pruned_layers=[name for name in hidden if name not in params.undeveloped_layers],
            developed=developed,
            constrained=developed if params.constrain_last_projection else developed[:-1],
            protected=protected, rates=rates,
            pruning_started=state.pruning_started_step,
            regeneration_started=state.regeneration_started_step,
            counts={p.name: {"upper_enlarged": 0, "lower_enlarged": 0, "spines_shrunk": 0,
                             "weights_clipped": 0, "regeneration_threshold": None}
                    for p in new.projections},
            clip_candidates={p.name: None for p in new.projections},
        )

    def clip(self, projection: Projection, candidates: np.ndarray, has_nan: bool) -> np.ndarray:
        """Clip the existing weights among ``candidates`` into their range.

        ``candidates`` are flat indices, a superset of the existing weights not strictly inside
        their range. Returns those now on a bound (or NaN).
        """
        index, clipped, changed, n_clipped = _clip_at(projection.weight, projection.spine, candidates)
        if has_nan:
            n_clipped += _absent_nan(projection.weight, projection.exists)
        if changed.any():
            np.put(self.copy_on_write.own(projection, "weight"), index[changed], clipped[changed])
        self.counts[projection.name]["weights_clipped"] += n_clipped
        return index


# ------------------------------------------------------------------ the named rules of one step
def _spine_rule(step: _Step) -> None:
    """Section 1, spine enlargement and shrinkage of the developed projections.

    Notes the synapses that may now sit outside their range (``clip_candidates``) for the
    constraint. Released: every developed projection but the last, on the effective weights of
    all synapses.
    """
    released = step.released
    for projection in (step.developed[:-1] if released else step.developed):
        projection.spine, events = _update_spines(
            projection.effective_weight() if released else projection.weight,
            np.ones(projection.shape, bool) if released else projection.exists,
            projection.spine, step.params.consecutive_steps, step.params.shrink_factor, released,
        )
        counts = step.counts[projection.name]
        counts["upper_enlarged"] = int(events.upper_enlarged.size)
        counts["lower_enlarged"] = int(events.lower_enlarged.size)
        counts["spines_shrunk"] = int(events.shrunk.size)
        step.clip_candidates[projection.name] = events.clip_candidates


def _constraint_rule(step: _Step) -> None:
    """Section 1, the synaptic constraint: clip existing weights into their spine range.

    Only weights at (or beyond) an edge of their range, or whose range shrank, can fall outside
    it: the constraint looks at those only (at every synapse when a weight is NaN, or when the
    spine rule did not run). Released: the whole weight tensor, latent weights included.
    """
    if step.released:
        for projection in step.constrained:
            clipped = np.clip(projection.weight, projection.spine.lower, projection.spine.upper)
            changed = clipped != projection.weight
            step.counts[projection.name]["weights_clipped"] = int(np.count_nonzero(changed))
            if changed.any():
                np.copyto(step.copy_on_write.own(projection, "weight"), clipped, where=changed)
        return
    for projection in step.constrained:
        index = step.clip_candidates[projection.name]
        step.has_nan[projection.name] = _any_nan(projection.weight)
        if index is None or step.has_nan[projection.name]:  # a NaN sits at no edge: test every synapse
            index = _not_strictly_inside(projection.weight, projection.exists, projection.spine)
        step.on_bound[projection.name] = step.clip(projection, index, step.has_nan[projection.name])


def _regeneration_rule(step: _Step) -> None:
    """Section 3, synaptic regeneration at the adaptive percentile q of this step.

    An absent synapse with an alive presynaptic unit counts its steps above the projection's
    q-th percentile; once ready it regrows if its target is alive, or if its pruned target has
    ``revival_min_synapses`` ready inputs (:func:`_revival_rule` then revives that target).
    Released: the percentile of all weights (latent included), and a synapse counts only when it
    was a candidate at the previous step too (N + 2 steps instead of N + 1).
    """
    params, new, released = step.params, step.structure, step.released
    if step.regeneration_started is None:
        step.regeneration_started = step.index
    q = regeneration_percentile(step.index - step.regeneration_started, params)
    step.regeneration_percentile = q
    for projection in step.developed:
        # A parameter row is alive with the source unit (neuron or channel) it reads.
        source_alive = new.population(projection.source).alive[new.row_units(projection)]
        target_alive = new.population(projection.target).alive
        eligible = source_alive[:, None]
        if not params.revive_neurons:
            eligible = eligible & target_alive[None, :]
        threshold = regeneration_threshold(
            projection.weight, np.ones(projection.shape, bool) if released else projection.exists, q)
        step.counts[projection.name]["regeneration_threshold"] = threshold
        streak, ready = _regrowth_step(
            projection.weight, projection.exists, eligible, projection.spine.regrowth_streak,
            threshold, params.regrowth_steps + int(released),
        )
        post = ready % projection.shape[1]  # the postsynaptic neuron of each ready synapse
        regrow = target_alive[post]
        dead = np.flatnonzero(~target_alive)
        if dead.size and ready.size:  # a pruned neuron revives once enough of its inputs are ready
            needed = min(params.revival_min_synapses, int(np.count_nonzero(source_alive)))
            ready_inputs = np.bincount(post, minlength=projection.shape[1])
            reviving = np.zeros(projection.shape[1], dtype=bool)
            reviving[dead[ready_inputs[dead] >= max(needed, 1)]] = True
            regrow |= reviving[post]
        regrown = ready[regrow]
        np.put(streak, regrown, 0)  # waiting synapses of pruned neurons keep counting
        projection.spine.regrowth_streak = streak
        np.put(projection.exists, regrown, True)


def _revival_rule(step: _Step) -> None:
    """Revive the pruned neurons that regained incoming synapses at this step.

    They become alive and protected (never pruned again), and their outgoing synapses to alive
    neurons are restored with fresh streaks. Input to output order, so that a revived neuron's
    outputs come back to neurons revived just before.
    """
    new = step.structure
    for name in step.hidden:
        population = new.population(name)
        if population.alive.all():
            continue
        incoming = new.projection_into(name)
        revived = ~population.alive & (incoming.exists & ~step.exists_before[incoming.name]).any(axis=0)
        if revived.any():
            population.alive[revived] = True
            step.protected[name] |= revived
            outgoing = new.projection_from(name)
            target_alive = new.population(outgoing.target).alive
            rows = np.flatnonzero(revived[new.row_units(outgoing)])
            restored = np.ix_(rows, np.flatnonzero(target_alive))
            outgoing.exists[restored] = True
            step.copy_on_write.forget_streaks(outgoing.spine, restored)


def _pruning_rule(step: _Step) -> None:
    """Section 2, neuron pruning: the pruning set of every pruned layer at its rate p_l.

    A pruned neuron (or channel: all its positions together) loses its incoming synapses (whose
    latent weights restart from 0 with ``reset_pruned_input_weights``) and its outgoing ones;
    absent synapses keep their range, their streaks restart. Released: a pruned neuron loses its
    input only, and ranking normalises the widths over all synapses.
    """
    params, new, released = step.params, step.structure, step.released
    if step.pruning_started is None:
        step.pruning_started = step.index
    for name in step.pruned_layers:
        population = new.population(name)
        units = population.n_units  # neurons, or channels (all positions pruned together)
        wanted = min(int(math.floor(step.rates[name] * units + 1e-9)), units - 1)
        if units - population.n_alive >= wanted:
            continue  # the pruned neurons fill the pruning set: no need to rank the layer
        incoming = new.projection_into(name)
        step.importance[name] = neuron_importance(incoming.spine, incoming.exists, over_all=released)
        chosen = neurons_to_prune(step.importance[name], population.alive, step.protected[name],
                                  step.rates[name],
                                  tie_breaker=None if released else _incoming_strength(incoming))
        if chosen.size == 0:
            continue
        population.alive[chosen] = False
        incoming.exists[:, chosen] = False
        if params.reset_pruned_input_weights:
            step.copy_on_write.own(incoming, "weight")[:, chosen] = 0.0
        # Absent synapses keep their range; their streaks restart.
        step.copy_on_write.forget_streaks(incoming.spine, np.s_[:, chosen])
        if not released:  # released: a pruned neuron loses its input only
            outgoing = new.projection_from(name)
            rows = np.flatnonzero(np.isin(new.row_units(outgoing), chosen))
            outgoing.exists[rows, :] = False
            step.copy_on_write.forget_streaks(outgoing.spine, np.s_[rows, :])


def _zero_absent_weights_rule(step: _Step) -> None:
    """Released semantics: every pruning step re-zeroes the weights of all absent synapses."""
    for projection in step.structure.projections:
        if not projection.exists.all():
            absent = ~projection.exists
            if np.any(projection.weight[absent] != 0.0):
                np.copyto(step.copy_on_write.own(projection, "weight"), 0.0, where=absent)


def _trophic_rule(step: _Step) -> None:
    """Section 2, neurotrophic adaptation of every pruned layer's rate p_l (after pruning)."""
    new, params = step.structure, step.params
    for name in step.pruned_layers:
        outgoing = new.projection_from(name)
        target = new.population(outgoing.target)
        target_is_output = target is new.populations[-1]
        step.rates[name] = adapt_pruning_rate(
            step.rates[name], step.index - step.pruning_started, _trophic_count(new, name, params),
            target.n_alive if target_is_output else _trophic_count(new, target.name, params),
            target_is_output, params,
        )


def _clip_regrown_rule(step: _Step) -> None:
    """Clip the synapses regrown at this step into their range (package semantics).

    The weights clipped by :func:`_constraint_rule` sit on a bound; every other existing one is
    strictly inside. (The two sets are disjoint: the first existed at the start of the step, the
    second not.)
    """
    for projection in step.constrained:
        grown = projection.exists & ~step.exists_before[projection.name]
        if not grown.any():
            continue
        index = np.concatenate([step.on_bound[projection.name], np.flatnonzero(grown)])
        step.clip(projection, index[np.take(projection.exists, index)], step.has_nan[projection.name])


def _finish(step: _Step, state: DevelopmentState) -> tuple[Structure, DevelopmentRecord, DevelopmentState]:
    """The new structure, the record of what the step did, and the rules' next state."""
    new = step.structure
    projections = {}
    for projection in new.projections:
        old = step.exists_before[projection.name]
        projections[projection.name] = {
            "synapses": projection.n_synapses,
            "synapses_removed": int(np.count_nonzero(old & ~projection.exists)),
            "synapses_added": int(np.count_nonzero(projection.exists & ~old)),
            **step.counts[projection.name],
        }
    populations = {}
    for name in step.hidden:
        population = new.population(name)
        outgoing = new.projection_from(name)
        target_alive = new.population(outgoing.target).n_alive
        populations[name] = {
            "alive": population.n_alive,
            "pruned": np.flatnonzero(step.alive_before[name] & ~population.alive).tolist(),
            "revived": np.flatnonzero(~step.alive_before[name] & population.alive).tolist(),
            "trophic_pressure": population.n_alive / target_alive,
        }
    new_state = replace(
        state, step=step.index + 1, pruning_rates=step.rates, pruning_started_step=step.pruning_started,
        regeneration_started_step=step.regeneration_started, protected=step.protected,
    )
    record = DevelopmentRecord(step.index + 1, step.actions, step.regeneration_percentile,
                               dict(step.rates), projections, populations, step.importance)
    return new, record, new_state


def develop_structure(structure: Structure, actions: DevelopmentActions, params: DevelopmentParameters,
                      state: DevelopmentState) -> tuple[Structure, DevelopmentRecord, DevelopmentState]:
    """Apply the rules due at one development step; the input structure is not modified.

    The paper's algorithm box, in the released code's order: spine update
    (:func:`_spine_rule`), constraint (:func:`_constraint_rule`), regeneration
    (:func:`_regeneration_rule`) and revival of the neurons it regrew inputs to
    (:func:`_revival_rule`), pruning (:func:`_pruning_rule`), neurotrophic adaptation of the
    pruning rates (:func:`_trophic_rule`); with the constraint active, the synapses regrown at
    this step are clipped into their range (:func:`_clip_regrown_rule`), so every existing weight
    ends inside its range. With released semantics the first step only sets the spine ranges
    (:func:`_initialise_ranges`) and pruning re-zeroes absent weights
    (:func:`_zero_absent_weights_rule`).

    The new structure shares the arrays that did not change with the input (copy on write, so a
    step on a 2312x800 projection does not copy ~120 MB): call ``new.copy()`` before modifying
    one of them in place if the input must stay as it is.

    Parameters
    ----------
    structure : Structure
        Not modified.
    actions : DevelopmentActions
        The rules due at this step (``Schedule.actions``).
    params : DevelopmentParameters
    state : DevelopmentState
        What the rules remember from earlier steps.

    Returns
    -------
    new_structure : Structure
    record : DevelopmentRecord
    new_state : DevelopmentState
    """
    if params.released and int(state.step) < params.initialisation_steps:
        return _initialise_ranges(structure, params, state)
    step = _Step.start(structure, actions, params, state)
    if actions.spines:
        _spine_rule(step)
    if actions.constrain:
        _constraint_rule(step)
    if actions.regenerate:  # before pruning, as in the released code
        _regeneration_rule(step)
        _revival_rule(step)
    if actions.prune:
        _pruning_rule(step)
        if step.released:
            _zero_absent_weights_rule(step)
        _trophic_rule(step)
    if actions.constrain and actions.regenerate and not step.released:
        _clip_regrown_rule(step)
    return _finish(step, state)

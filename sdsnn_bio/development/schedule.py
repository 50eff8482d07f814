"""When each SD-SNN rule runs: development steps in units of training progress (the rules never see epochs).

SD-SNN (Han et al., arXiv 2211.12219, sections 1-3; released code ``main.py``) applies its rules
once per epoch, with K = 18 consecutive-step threshold::

    spine update (enlargement / shrinkage)   every development step
    synaptic constraint                      at steps s >= K        (released: epoch > K)
    neuron pruning + neurotrophic rate       at steps s >= 2K       (released: epoch > 2K)
    synaptic regeneration                    at steps s >= 2K       (released: epoch > 2K)

Here ``steps_per_epoch`` development steps happen per epoch of training (the paper: 1; more let
short runs show the dynamics), wherever in the run training has got to: with ``n`` training
batches per epoch, batch ``b`` (1-based, counted over all epochs) has completed ``b / n`` epochs,
and the steps due by then are::

    steps_due(b) = floor(b * steps_per_epoch / n)          (exact rational arithmetic)

so step ``s`` (0-based) happens at the first batch with ``b / n >= (s + 1) / steps_per_epoch``
epochs of training. The developmental timeline in epochs is therefore the same for any dataset
size (1 438, 10 000 or 60 000 training samples), up to the rounding to whole batches (less than
one batch). Every warm-up below is a number of development steps, hence ``warm-up /
steps_per_epoch`` epochs of training whatever the dataset. (Before, steps came every
``interval_batches`` batches: 4.5 steps per epoch on 1 438 samples in batches of 32 became 31 on
10 000 and 188 on 60 000.) A :class:`Schedule` maps ``s`` to the :class:`DevelopmentActions` due
at that step; it is the only object that knows about time. K itself is a rule constant and lives in
:class:`~sdsnn_bio.development.rules.DevelopmentParameters` (``consecutive_steps``): warm-ups left
at ``None`` are derived from it where the schedule meets the rules' parameters: by
:class:`~sdsnn_bio.development.StructuralScheduler` (its ``schedule`` attribute is the schedule in
force), by ``ExperimentConfig.schedule()`` and by ``schedule.actions(step, params)``; users never
resolve a schedule themselves.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace
from fractions import Fraction

__all__ = ["DevelopmentActions", "Schedule"]


@dataclass(frozen=True)
class DevelopmentActions:
    """Which rules run at one development step.

    Attributes
    ----------
    spines : bool
        Spine enlargement and shrinkage (section 1).
    constrain : bool
        Clip existing weights into their spine range (section 1).
    prune : bool
        Neuron pruning and neurotrophic adaptation of the pruning rate (section 2).
    regenerate : bool
        Synaptic regeneration (section 3).
    """

    spines: bool = True
    constrain: bool = False
    prune: bool = False
    regenerate: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, bool):
                raise ValueError(f"DevelopmentActions.{f.name}: expected True or False, got {value!r}")

    def to_dict(self) -> dict:
        """JSON-ready mapping of the four switches."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _check_steps(name: str, value, *, low: int, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        expected = f"an integer >= {low}" + (" or None (derived from consecutive_steps)" if allow_none else "")
        raise ValueError(f"Schedule.{name}: expected {expected}, got {value!r}")


@dataclass(frozen=True)
class Schedule:
    """When development steps happen and which rules each one runs.

    Parameters
    ----------
    steps_per_epoch : float
        Development steps per epoch of training (> 0; the paper: 1; default 4.5, which on the
        embedded dataset's 45 batches per epoch is a step every 10 batches). At most the number of
        training batches per epoch (checked when training starts, :meth:`check_batches_per_epoch`).
    constraint_warmup_steps : int or None
        First development step (0-based) at which weights are clipped into their spine range.
        None: K (released code: after K steps).
    pruning_warmup_steps : int or None
        First development step of neuron pruning. None: 2K (released code: after 2K steps).
    regeneration_warmup_steps : int or None
        First development step of synaptic regeneration. None: the pruning warm-up (released code:
        regeneration and pruning start together).
    development_end_steps : int or None
        First development step at which neither pruning nor regeneration runs any more: from then on
        the architecture is frozen (the method's structural stability, reached here in finite time)
        and training fine-tunes the final structure; spine plasticity and the constraint go on.
        None (default, the released code): they run until the end of training.
    spine_plasticity, constraint, pruning, regeneration : bool
        Switch each rule on or off (the released N-MNIST script has regeneration off; we keep it on).
    """

    steps_per_epoch: float = 4.5
    constraint_warmup_steps: int | None = None
    pruning_warmup_steps: int | None = None
    regeneration_warmup_steps: int | None = None
    development_end_steps: int | None = None
    spine_plasticity: bool = True
    constraint: bool = True
    pruning: bool = True
    regeneration: bool = True

    def __post_init__(self) -> None:
        rate = self.steps_per_epoch
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not math.isfinite(rate) or rate <= 0:
            raise ValueError(
                f"Schedule.steps_per_epoch: expected a number > 0 (development steps per epoch of "
                f"training), got {rate!r}"
            )
        for name in ("constraint_warmup_steps", "pruning_warmup_steps", "regeneration_warmup_steps"):
            _check_steps(name, getattr(self, name), low=0, allow_none=True)
        end = self.development_end_steps
        if end is not None:
            if isinstance(end, bool) or not isinstance(end, numbers.Integral) or end < 1:
                raise ValueError(
                    f"Schedule.development_end_steps: expected an integer >= 1 or None (no end), got {end!r}"
                )
            for name in ("pruning_warmup_steps", "regeneration_warmup_steps"):
                start = getattr(self, name)
                if start is not None and self.development_end_steps <= start:
                    raise ValueError(
                        f"Schedule.development_end_steps: expected an integer > {name} = {start} "
                        f"(else that rule would never run), got {self.development_end_steps!r}"
                    )
        for name in ("spine_plasticity", "constraint", "pruning", "regeneration"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(f"Schedule.{name}: expected true or false, got {value!r}")

    # ------------------------------------------------------------------ derived warm-ups
    @property
    def is_resolved(self) -> bool:
        """True when every warm-up is a number (see :meth:`resolve`)."""
        return None not in (self.constraint_warmup_steps, self.pruning_warmup_steps,
                            self.regeneration_warmup_steps)

    def resolve(self, consecutive_steps: int, initialisation_steps: int = 0) -> "Schedule":
        """Copy with the warm-ups left at None derived from K = ``consecutive_steps``.

        Called where the schedule meets the rules' parameters (``StructuralScheduler``,
        ``ExperimentConfig.schedule()``, :meth:`actions` given ``params``), not by users.

        ``constraint_warmup_steps = K``, ``pruning_warmup_steps = 2K`` and
        ``regeneration_warmup_steps = pruning_warmup_steps`` (released code's timing), each
        after ``initialisation_steps`` more steps (released semantics: 1, the step that sets the
        spine ranges from the weights trained so far, so that step ``s`` is the released scripts'
        epoch ``s``: constraint from K + 1, pruning and regeneration from 2K + 1).
        """
        _check_steps("resolve(consecutive_steps)", consecutive_steps, low=1, allow_none=False)
        _check_steps("resolve(initialisation_steps)", initialisation_steps, low=0, allow_none=False)
        constraint = self.constraint_warmup_steps
        pruning = self.pruning_warmup_steps
        regeneration = self.regeneration_warmup_steps
        constraint = consecutive_steps + initialisation_steps if constraint is None else constraint
        pruning = 2 * consecutive_steps + initialisation_steps if pruning is None else pruning
        regeneration = pruning if regeneration is None else regeneration
        return replace(self, constraint_warmup_steps=constraint, pruning_warmup_steps=pruning,
                       regeneration_warmup_steps=regeneration)

    # ------------------------------------------------------------------ the schedule
    def _per_epoch(self) -> Fraction:
        """``steps_per_epoch`` as an exact fraction of its decimal form (4.5 -> 9/2, 0.1 -> 1/10)."""
        return Fraction(repr(float(self.steps_per_epoch)))

    def check_batches_per_epoch(self, batches_per_epoch: int) -> None:
        """Raise if an epoch of ``batches_per_epoch`` batches cannot hold ``steps_per_epoch`` steps.

        A development step needs a training batch before it (at most one step per batch).
        """
        n = batches_per_epoch
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"Schedule: batches_per_epoch must be an integer >= 1, got {n!r}")
        if self._per_epoch() > n:
            raise ValueError(
                f"Schedule.steps_per_epoch: expected at most the {n} training batches per epoch "
                f"(at most one development step per batch), got {self.steps_per_epoch!r}; lower "
                "development.steps_per_epoch or learning.batch_size, or train on more samples"
            )

    def steps_due(self, batch_index: int, batches_per_epoch: int) -> int:
        """Development steps due after a training batch.

        Development steps due once training batch ``batch_index`` (1-based, counted over all
        epochs; 0 = before training) is done: ``floor(batch_index * steps_per_epoch / n)``.
        """
        if isinstance(batch_index, bool) or not isinstance(batch_index, numbers.Integral) or batch_index < 0:
            raise ValueError(
                f"Schedule.steps_due: batch_index is 1-based, expected an integer >= 0, got {batch_index!r}"
            )
        self.check_batches_per_epoch(batches_per_epoch)
        return math.floor(int(batch_index) * self._per_epoch() / int(batches_per_epoch))

    def is_development_batch(self, batch_index: int, batches_per_epoch: int) -> bool:
        """Whether training batch ``batch_index`` (1-based, counted over all epochs) ends a step."""
        if isinstance(batch_index, bool) or not isinstance(batch_index, numbers.Integral) or batch_index < 1:
            raise ValueError(
                f"Schedule.is_development_batch: batch_index is 1-based, expected an integer >= 1, "
                f"got {batch_index!r}"
            )
        return self.steps_due(batch_index, batches_per_epoch) > self.steps_due(batch_index - 1, batches_per_epoch)

    def development_steps(self, n_batches: int, batches_per_epoch: int) -> int:
        """Number of development steps in the first ``n_batches`` training batches."""
        return self.steps_due(int(n_batches), batches_per_epoch)

    def step_batches(self, n_steps: int, batches_per_epoch: int) -> list[int]:
        """The training batch (1-based) that ends each of the first ``n_steps`` development steps.

        Divide by ``batches_per_epoch`` for the timeline in epochs of training.
        """
        self.check_batches_per_epoch(batches_per_epoch)
        per_epoch, n = self._per_epoch(), int(batches_per_epoch)
        return [math.ceil((s + 1) * n / per_epoch) for s in range(int(n_steps))]

    def actions(self, step: int, params=None) -> DevelopmentActions:
        """Rules due at development step ``step`` (0-based: the number of steps already done).

        Parameters
        ----------
        step : int
            0-based development step.
        params : DevelopmentParameters, optional
            The rules' constants: warm-ups left at None are derived from their K
            (``consecutive_steps``) and initialisation steps. Needed unless every warm-up is set.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"Schedule.actions: step is 0-based, expected an integer >= 0, got {step!r}")
        schedule = self
        if not self.is_resolved and params is not None:
            schedule = self.resolve(params.consecutive_steps, params.initialisation_steps)
        if not schedule.is_resolved:
            missing = [name for name in ("constraint_warmup_steps", "pruning_warmup_steps",
                                         "regeneration_warmup_steps") if getattr(self, name) is None]
            raise ValueError(
                f"Schedule.{missing[0]}: expected an integer, got None (derived from K); pass the "
                "rules' parameters, schedule.actions(step, params), to derive it from their "
                "consecutive_steps (StructuralScheduler does)"
            )
        structural = schedule.development_end_steps is None or step < schedule.development_end_steps
        return DevelopmentActions(
            spines=schedule.spine_plasticity,
            constrain=schedule.constraint and step >= schedule.constraint_warmup_steps,
            prune=schedule.pruning and structural and step >= schedule.pruning_warmup_steps,
            regenerate=schedule.regeneration and structural and step >= schedule.regeneration_warmup_steps,
        )

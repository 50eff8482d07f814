"""When each SD-SNN rule runs: development steps over training batches (the rules never see epochs).

SD-SNN (Han et al., arXiv 2211.12219, sections 1-3; released code ``main.py``) applies its rules
once per epoch, with K = 18 consecutive-step threshold::

    spine update (enlargement / shrinkage)   every development step
    synaptic constraint                      at steps s >= K        (released: epoch > K)
    neuron pruning + neurotrophic rate       at steps s >= 2K       (released: epoch > 2K)
    synaptic regeneration                    at steps s >= 2K       (released: epoch > 2K)

Here a *development step* happens after every ``interval_batches`` training batches, so short runs
show the dynamics too: batch ``b`` (1-based) ends a development step when ``b % interval_batches
== 0``, and development steps are numbered ``s = 0, 1, 2, ...`` in the order they happen. A
:class:`Schedule` maps ``s`` to the :class:`DevelopmentActions` due at that step; it is the only
object that knows about time. K itself is a rule constant and lives in
:class:`~sdsnn_bio.development.rules.DevelopmentParameters` (``consecutive_steps``): warm-ups left
at ``None`` are derived from it by :meth:`Schedule.resolve`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields, replace

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
    interval_batches : int
        A development step after every ``interval_batches`` training batches (>= 1; the paper:
        one per epoch).
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

    interval_batches: int = 10
    constraint_warmup_steps: int | None = None
    pruning_warmup_steps: int | None = None
    regeneration_warmup_steps: int | None = None
    development_end_steps: int | None = None
    spine_plasticity: bool = True
    constraint: bool = True
    pruning: bool = True
    regeneration: bool = True

    def __post_init__(self) -> None:
        _check_steps("interval_batches", self.interval_batches, low=1, allow_none=False)
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

    def resolve(self, consecutive_steps: int) -> "Schedule":
        """Copy with the warm-ups left at None derived from K = ``consecutive_steps``.

        ``constraint_warmup_steps = K``, ``pruning_warmup_steps = 2K`` and
        ``regeneration_warmup_steps = pruning_warmup_steps`` (released code's timing).
        """
        _check_steps("resolve(consecutive_steps)", consecutive_steps, low=1, allow_none=False)
        constraint = self.constraint_warmup_steps
        pruning = self.pruning_warmup_steps
        regeneration = self.regeneration_warmup_steps
        constraint = consecutive_steps if constraint is None else constraint
        pruning = 2 * consecutive_steps if pruning is None else pruning
        regeneration = pruning if regeneration is None else regeneration
        return replace(self, constraint_warmup_steps=constraint, pruning_warmup_steps=pruning,
                       regeneration_warmup_steps=regeneration)

    # ------------------------------------------------------------------ the schedule
    def is_development_batch(self, batch_index: int) -> bool:
        """Whether training batch ``batch_index`` (1-based, counted over all epochs) ends a step."""
        if isinstance(batch_index, bool) or not isinstance(batch_index, numbers.Integral) or batch_index < 1:
            raise ValueError(
                f"Schedule.is_development_batch: batch_index is 1-based, expected an integer >= 1, "
                f"got {batch_index!r}"
            )
        return batch_index % self.interval_batches == 0

    def development_steps(self, n_batches: int) -> int:
        """Number of development steps in the first ``n_batches`` training batches."""
        return int(n_batches) // self.interval_batches

    def actions(self, step: int) -> DevelopmentActions:
        """Rules due at development step ``step`` (0-based: the number of steps already done)."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"Schedule.actions: step is 0-based, expected an integer >= 0, got {step!r}")
        if not self.is_resolved:
            missing = [name for name in ("constraint_warmup_steps", "pruning_warmup_steps",
                                         "regeneration_warmup_steps") if getattr(self, name) is None]
            raise ValueError(
                f"Schedule.{missing[0]}: expected an integer, got None (derived from K); call "
                "schedule.resolve(params.consecutive_steps) first (StructuralScheduler does)"
            )
        structural = self.development_end_steps is None or step < self.development_end_steps
        return DevelopmentActions(
            spines=self.spine_plasticity,
            constrain=self.constraint and step >= self.constraint_warmup_steps,
            prune=self.pruning and structural and step >= self.pruning_warmup_steps,
            regenerate=self.regeneration and structural and step >= self.regeneration_warmup_steps,
        )

"""Development monitors: record spine and neuron variables at every development step.

Brian2's ``StateMonitor(group, "v", record=...)`` records a variable at every time step; the spine
and trophic variables of SD-SNN change only *between* runs, at development steps, so a
:class:`DevelopmentMonitor` records them there::

    monitor = DevelopmentMonitor("input_to_hidden_1", ["w", "spine_range_upper"], "i < 10")
    scheduler = StructuralScheduler(network, structure, schedule, params, monitors=[monitor])
    ...                                       # training with development steps
    monitor.spine_range_upper                 # shape (n_recorded, n_steps), like StateMonitor.v
    monitor.steps                             # development step of each column

A monitor watches one projection (synaptic variables) or one population (neuron variables):

* synaptic variables: ``w`` (the latent weight while the synapse is absent), ``exists``,
  ``spine_range_lower``, ``spine_range_upper`` (aliases ``lower``, ``upper``), ``spine_width``,
  ``upper_streak``, ``upper_excess``, ``lower_streak``, ``lower_excess``, ``shrink_streak``,
  ``previous_abs_weight``, ``regrowth_streak``, ``alive_pre``, ``alive_post``;
* neuron variables: ``alive``, ``importance`` (summed normalised spine width of the incoming
  synapses, SD-SNN section 2), ``pruning_rate`` (the layer's ``p_l``, the same for every neuron).

The subset is chosen with a Brian2-style condition on ``i``, ``j`` and the variables (for a
population: ``i``, ``alive`` and ``importance``), e.g. ``"i < 10 and j == 3"`` or
``"spine_width > 0.5"``. It is evaluated once, when the monitor is attached to the structure
(:meth:`DevelopmentMonitor.attach`, done by the scheduler before the first step), like Brian2's
``record=``: the recorded synapses stay the same over the run (record ``exists`` to see them come
and go). Conditions are parsed with :mod:`ast` and evaluated over arrays
(:func:`~sdsnn_bio.development.conditions.evaluate_mask`); nothing else is executed.

**Memory**: each recorded element costs, per development step, 8 bytes per floating-point variable
(``w``, the range bounds, ``spine_width``, the excess sums, ``previous_abs_weight``,
``importance``, ``pruning_rate``), 4 bytes per streak counter and 1 byte per boolean (``exists``,
``alive``, ``alive_pre``, ``alive_post``), plus 8 bytes per step for the step number: ``w``,
``spine_range_lower`` and ``spine_range_upper`` of 1000 synapses over 500 steps take 12 MB
(:attr:`DevelopmentMonitor.bytes_per_step`, :attr:`DevelopmentMonitor.nbytes`). Values are stored
in the structure's dtype, so they equal the structure's exactly.

Monitors are saved with the run (:func:`save_monitors`, file :data:`MONITORS_FILE` of the model's
folder) and read back with :func:`load_monitors`; :func:`sdsnn_bio.plotting.plot_monitor` and
:func:`sdsnn_bio.plotting.plot_spine_dynamics` draw them, and so do
:func:`~sdsnn_bio.plotting.plot_pruning` (population monitors recording ``alive``) and
:func:`~sdsnn_bio.plotting.plot_regeneration` (projection monitors recording ``exists``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..files import atomic_open
from ..runfolder import MONITORS
from ..structure import SPINE_FIELDS, Structure
from .conditions import ConditionError, condition_variables, evaluate_mask

__all__ = [
    "DevelopmentMonitor",
    "MONITORS_FILE",
    "NEURON_VARIABLES",
    "SYNAPSE_VARIABLES",
    "load_monitors",
    "monitors_from_arrays",
    "monitors_to_arrays",
    "save_monitors",
]

#: File of a model's folder holding its monitors (written by :func:`save_monitors`); the name is
#: owned by the run-folder format, :mod:`sdsnn_bio.runfolder`.
MONITORS_FILE = MONITORS

#: Synaptic variables a monitor can record -> dtype of the recorded values.
SYNAPSE_VARIABLES = {
    "w": np.float64,
    "exists": np.bool_,
    "spine_range_lower": np.float64,
    "spine_range_upper": np.float64,
    "spine_width": np.float64,
    "upper_streak": np.int32,
    "upper_excess": np.float64,
    "lower_streak": np.int32,
    "lower_excess": np.float64,
    "shrink_streak": np.int32,
    "previous_abs_weight": np.float64,
    "regrowth_streak": np.int32,
    "alive_pre": np.bool_,
    "alive_post": np.bool_,
}
#: Neuron variables a monitor can record -> dtype of the recorded values.
NEURON_VARIABLES = {
    "alive": np.bool_,
    "importance": np.float64,
    "pruning_rate": np.float64,
}
_ALIASES = {"lower": "spine_range_lower", "upper": "spine_range_upper"}
_SPINE_ATTRIBUTE = {"spine_range_lower": "lower", "spine_range_upper": "upper"}


def _importance(structure: Structure, population: str) -> np.ndarray:
    from .rules import neuron_importance

    size = structure.population(population).n_units
    try:
        projection = structure.projection_into(population)
    except KeyError:  # the input population has no incoming synapses
        return np.zeros(size)
    return neuron_importance(projection.spine, projection.exists)


class DevelopmentMonitor:
    """Records variables of a subset of synapses or neurons at every development step.

    Parameters
    ----------
    source : str
        Name of a projection (``"input_to_hidden_1"``: synaptic variables) or of a population
        (``"hidden_1"``: neuron variables).
    variables : str or sequence of str
        What to record (see the module docstring; ``"lower"``/``"upper"`` are accepted for the
        range bounds).
    condition : str, optional
        Brian2-style condition choosing the recorded synapses (neurons); default: all of them.
    name : str, optional
        Unique name (default ``"<source>_monitor"``); the key of the monitor in saved files.

    Attributes
    ----------
    i, j : ndarray of int64
        Presynaptic and postsynaptic index of each recorded synapse (for a population: ``i`` is
        the neuron index and ``j`` is None). Set by :meth:`attach`.
    steps : ndarray of int64, shape (n_steps,)
        Development step of each recording (1 for the first step).

    Notes
    -----
    Recorded values are read as attributes, like a Brian2 ``StateMonitor``:
    ``monitor.w[k]`` is the trajectory of the k-th recorded synapse, shape ``(n_steps,)``.
    Memory per recorded element and step: see :attr:`bytes_per_step` and the module docstring.
    """

    def __init__(self, source: str, variables, condition: str | None = None, *,
                 name: str | None = None) -> None:
        if not isinstance(source, str) or not source:
            raise ValueError(f"DevelopmentMonitor: source must be a projection or population name, got {source!r}")
        if isinstance(variables, str):
            variables = [variables]
        variables = [_ALIASES.get(v, v) for v in variables]
        if not variables:
            raise ValueError(f"DevelopmentMonitor {source!r}: variables must name at least one variable")
        if len(set(variables)) != len(variables):
            raise ValueError(f"DevelopmentMonitor {source!r}: variables lists a variable twice: {variables}")
        known = set(SYNAPSE_VARIABLES) | set(NEURON_VARIABLES)
        unknown = [v for v in variables if v not in known]
        if unknown:
            raise ValueError(
                f"DevelopmentMonitor {source!r}: unknown variables {unknown}; synaptic variables: "
                f"{sorted(SYNAPSE_VARIABLES)}; neuron variables: {sorted(NEURON_VARIABLES)}"
            )
        if condition is not None and not isinstance(condition, str):
            raise ValueError(f"DevelopmentMonitor {source!r}: condition must be a string, got {condition!r}")
        self.source = source
        self.variables = tuple(variables)
        self.condition = condition
        self.name = name or f"{source}_monitor"
        self.kind: str | None = None
        self.i: np.ndarray | None = None
        self.j: np.ndarray | None = None
        self._steps: list[int] = []
        self._values: dict[str, list[np.ndarray]] = {v: [] for v in self.variables}

    def __repr__(self) -> str:
        where = "" if self.condition is None else f", condition={self.condition!r}"
        recorded = "" if self.i is None else f", {self.n_recorded} recorded, {len(self._steps)} steps"
        return f"DevelopmentMonitor({self.source!r}, {list(self.variables)}{where}, name={self.name!r}{recorded})"

    # ------------------------------------------------------------------ selection
    def attach(self, structure: Structure) -> None:
        """Resolve the source and choose the recorded subset (once; later calls only check it)."""
        projections = {p.name for p in structure.projections}
        populations = {p.name for p in structure.populations}
        if self.source in projections:
            kind, allowed = "projection", SYNAPSE_VARIABLES
        elif self.source in populations:
            kind, allowed = "population", NEURON_VARIABLES
        else:
            raise KeyError(
                f"DevelopmentMonitor {self.name!r}: no projection or population named {self.source!r}; "
                f"projections: {sorted(projections)}, populations: {sorted(populations)}"
            )
        wrong = [v for v in self.variables if v not in allowed]
        if wrong:
            raise ValueError(
                f"DevelopmentMonitor {self.name!r}: {wrong} cannot be recorded on the {kind} "
                f"{self.source!r}; {kind} variables: {sorted(allowed)}"
            )
        if self.i is not None:
            if kind != self.kind:
                raise ValueError(f"DevelopmentMonitor {self.name!r}: attached to a {self.kind} before, "
                                 f"now {self.source!r} is a {kind}")
            return
        self.kind = kind
        if kind == "projection":
            projection = structure.projection(self.source)
            source_alive = structure.population(projection.source).alive[structure.row_units(projection)]
            variables = condition_variables(projection, source_alive,
                                            structure.population(projection.target).alive)
            mask = self._select(variables, projection.shape)
            i, j = np.nonzero(mask)
            self.i, self.j = i.astype(np.int64), j.astype(np.int64)
        else:
            population = structure.population(self.source)
            # One entry per unit: a neuron, or a channel of a convolutional population.
            variables = {"i": np.arange(population.n_units), "alive": population.alive,
                         "importance": _importance(structure, self.source)}
            mask = self._select(variables, (population.n_units,))
            self.i, self.j = np.nonzero(mask)[0].astype(np.int64), None

    def _select(self, variables: dict, shape: tuple) -> np.ndarray:
        if self.condition is None:
            return np.ones(shape, dtype=bool)
        try:
            return evaluate_mask(self.condition, variables, shape)
        except ConditionError as err:
            raise ConditionError(f"DevelopmentMonitor {self.name!r}: {err}") from None

    # ------------------------------------------------------------------ recording
    def record(self, step: int, structure: Structure, pruning_rates: Mapping[str, float] | None = None) -> None:
        """Append the current values of the recorded subset (called after each development step).

        Parameters
        ----------
        step : int
            The development step just completed (1 for the first).
        structure : Structure
            The structure after that step.
        pruning_rates : mapping of str to float, optional
            The layers' pruning rates (``DevelopmentState.pruning_rates``); missing layers record NaN.
        """
        if self.i is None:
            self.attach(structure)
        if self.kind == "projection":
            projection = structure.projection(self.source)
            flat = self.i * projection.shape[1] + self.j
            for variable in self.variables:
                self._values[variable].append(self._synapse_values(variable, structure, projection, flat))
        else:
            population = structure.population(self.source)
            for variable in self.variables:
                if variable == "alive":
                    values = population.alive[self.i]
                elif variable == "importance":
                    values = _importance(structure, self.source)[self.i]
                else:
                    rate = (pruning_rates or {}).get(self.source)
                    values = np.full(self.i.size, np.nan if rate is None else float(rate))
                self._values[variable].append(np.array(values, dtype=NEURON_VARIABLES[variable]))
        self._steps.append(int(step))

    def _synapse_values(self, variable: str, structure: Structure, projection, flat: np.ndarray) -> np.ndarray:
        if variable == "w":
            values = projection.weight.ravel()[flat]
        elif variable == "exists":
            values = projection.exists.ravel()[flat]
        elif variable == "spine_width":
            values = projection.spine.upper.ravel()[flat] + np.abs(projection.spine.lower.ravel()[flat])
        elif variable == "alive_pre":
            values = structure.population(projection.source).alive[structure.row_units(projection)[self.i]]
        elif variable == "alive_post":
            values = structure.population(projection.target).alive[self.j]
        else:
            field_name = _SPINE_ATTRIBUTE.get(variable, variable)
            assert field_name in SPINE_FIELDS, variable
            values = getattr(projection.spine, field_name).ravel()[flat]
        return np.array(values, dtype=SYNAPSE_VARIABLES[variable])

    # ------------------------------------------------------------------ reading
    @property
    def n_recorded(self) -> int:
        """Number of recorded synapses (neurons); 0 before :meth:`attach`."""
        return 0 if self.i is None else int(self.i.size)

    @property
    def steps(self) -> np.ndarray:
        """Development steps recorded so far (1-based, one per column of :meth:`values`)."""
        return np.asarray(self._steps, dtype=np.int64)

    def values(self, variable: str) -> np.ndarray:
        """Recorded values of ``variable``, shape ``(n_recorded, n_steps)``."""
        variable = _ALIASES.get(variable, variable)
        if variable not in self._values:
            raise KeyError(f"DevelopmentMonitor {self.name!r} does not record {variable!r}; "
                           f"it records {list(self.variables)}")
        recorded = self._values[variable]
        dtype = {**SYNAPSE_VARIABLES, **NEURON_VARIABLES}[variable]
        if not recorded:
            return np.zeros((self.n_recorded, 0), dtype=dtype)
        return np.stack(recorded, axis=1)

    def __getattr__(self, name: str):
        values = self.__dict__.get("_values")
        if values is not None and _ALIASES.get(name, name) in values:
            return self.values(name)
        raise AttributeError(f"{type(self).__name__!s} {self.__dict__.get('name')!r} has no attribute {name!r}")

    @property
    def labels(self) -> list[str]:
        """``source[i] → target[j]`` (or ``population[i]``) of every recorded element."""
        if self.i is None:
            return []
        if self.kind == "projection":
            source, _, target = self.source.partition("_to_")
            return [f"{source}[{i}] → {target}[{j}]" for i, j in zip(self.i, self.j)]
        return [f"{self.source}[{i}]" for i in self.i]

    @property
    def bytes_per_step(self) -> int:
        """Bytes added per development step: recorded elements × summed itemsize, + 8 for the step."""
        dtypes = {**SYNAPSE_VARIABLES, **NEURON_VARIABLES}
        return self.n_recorded * sum(np.dtype(dtypes[v]).itemsize for v in self.variables) + 8

    @property
    def nbytes(self) -> int:
        """Bytes held by the recordings so far."""
        return len(self._steps) * self.bytes_per_step

    def truncate(self, step: int) -> "DevelopmentMonitor":
        """Drop the recordings made after development step ``step`` (resuming from a checkpoint).

        Returns the monitor itself.
        """
        keep = [k for k, s in enumerate(self._steps) if s <= step]
        self._steps = [self._steps[k] for k in keep]
        self._values = {v: [values[k] for k in keep] for v, values in self._values.items()}
        return self

    def summary(self) -> dict:
        """JSON-ready description: definition, sizes and memory (for ``result.json``)."""
        return {"source": self.source, "variables": list(self.variables), "condition": self.condition,
                "recorded": self.n_recorded, "steps": len(self._steps),
                "bytes_per_step": self.bytes_per_step, "bytes": self.nbytes}

    # ------------------------------------------------------------------ persistence
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Named arrays (for ``.npz`` files): definition, subset, steps and values."""
        meta = {"source": self.source, "variables": list(self.variables), "condition": self.condition,
                "name": self.name, "kind": self.kind}
        arrays = {f"{prefix}/meta": np.array(json.dumps(meta)), f"{prefix}/steps": self.steps}
        if self.i is not None:
            arrays[f"{prefix}/i"] = self.i
            if self.j is not None:
                arrays[f"{prefix}/j"] = self.j
        for variable in self.variables:
            arrays[f"{prefix}/values/{variable}"] = self.values(variable)
        return arrays

    @classmethod
    def from_arrays(cls, arrays, prefix: str, source: str = "arrays") -> "DevelopmentMonitor":
        """Inverse of :meth:`to_arrays`; ``source`` names the file in error messages."""
        try:
            meta = json.loads(str(arrays[f"{prefix}/meta"]))
            monitor = cls(meta["source"], meta["variables"], meta["condition"], name=meta["name"])
            monitor.kind = meta["kind"]
            if f"{prefix}/i" in arrays:
                monitor.i = np.asarray(arrays[f"{prefix}/i"], dtype=np.int64)
                if f"{prefix}/j" in arrays:
                    monitor.j = np.asarray(arrays[f"{prefix}/j"], dtype=np.int64)
            monitor._steps = [int(s) for s in arrays[f"{prefix}/steps"]]
            for variable in monitor.variables:
                values = np.asarray(arrays[f"{prefix}/values/{variable}"])
                monitor._values[variable] = [values[:, k].copy() for k in range(values.shape[1])]
        except (KeyError, ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"{source}: not a sdsnn_bio development monitor under {prefix!r} ({err})") from None
        return monitor


def _check_names(monitors: Sequence[DevelopmentMonitor]) -> None:
    names = [m.name for m in monitors]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"development monitors: names must be unique, {duplicates} used twice "
                         "(pass name=... to DevelopmentMonitor)")


def monitors_to_arrays(monitors: Sequence[DevelopmentMonitor]) -> dict[str, np.ndarray]:
    """All monitors as named arrays under ``monitor/<name>/...``."""
    _check_names(monitors)
    arrays = {"monitors": np.array([m.name for m in monitors], dtype=str)}
    for monitor in monitors:
        arrays.update(monitor.to_arrays(f"monitor/{monitor.name}"))
    return arrays


def monitors_from_arrays(arrays, source: str = "arrays") -> dict[str, DevelopmentMonitor]:
    """Inverse of :func:`monitors_to_arrays`: monitors by name."""
    if "monitors" not in arrays:
        raise ValueError(f"{source}: not a sdsnn_bio monitors file (no 'monitors' array)")
    return {str(name): DevelopmentMonitor.from_arrays(arrays, f"monitor/{name}", source)
            for name in arrays["monitors"]}


def save_monitors(path: str | os.PathLike, monitors: Sequence[DevelopmentMonitor]) -> Path:
    """Write ``monitors`` to ``path`` (compressed ``.npz``, lossless) atomically."""
    arrays = monitors_to_arrays(monitors)
    with atomic_open(path) as handle:
        np.savez_compressed(handle, **arrays)
    return Path(path)


def load_monitors(path: str | os.PathLike) -> dict[str, DevelopmentMonitor]:
    """Read the monitors saved by :func:`save_monitors`, by name.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a monitors file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"monitors file {path} does not exist")
    with np.load(path, allow_pickle=False) as data:
        return monitors_from_arrays({key: data[key] for key in data.files}, source=str(path))

"""Network structure as plain arrays: populations, projections and spine state.

The structure is the record of truth that the development rules (SD-SNN, Han et al. 2022,
arXiv 2211.12219, sections 1-3) read and change, the learner trains, and the Brian2 network is built
from. Every projection holds *all potential synapses* between its two populations as dense
``(n_source, n_target)`` arrays:

* ``weight[i, j]``: the synapse's weight when it exists, and its *latent* weight when it has been
  pruned (the learner keeps updating latent weights, which synaptic regeneration reads, section 3);
* ``exists[i, j]``: whether the synapse is present in the network (``i``/``j`` are its nonzeros);
* ``spine``: the dendritic-spine state of section 1 (range ``[lower, upper]``, streak counters and
  excess sums, previous ``|w|``), kept for pruned synapses too so that a regrown synapse recovers
  the range it had.

A population carries an ``alive`` mask (section 2: pruned neurons stop spiking). Structures are
saved to and loaded from ``.npz`` files written atomically (temporary file + rename).

Convolutional networks (:mod:`sdsnn_bio.geometry`): a projection with a ``geometry`` holds its
*parameters* (kernel elements, or the weights of a fully-connected layer fed by channels) in the
same 2-D arrays, each shared by many synapses; its spine state is per kernel weight. A population
with a ``shape`` ``(channels, height, width)`` is pruned per channel: its ``alive`` mask has one
entry per channel, and a pruned channel silences all its positions (:attr:`Population.neuron_alive`).
The development rules address *units* (a neuron, or a channel) and parameter rows
(:meth:`Structure.row_units`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import atomic_open
from .geometry import Geometry

__all__ = [
    "SpineState",
    "Projection",
    "Population",
    "Structure",
    "atomic_save_npz",
]

SPINE_FIELDS = (
    "lower",
    "upper",
    "upper_streak",
    "upper_excess",
    "lower_streak",
    "lower_excess",
    "shrink_streak",
    "previous_abs_weight",
    "regrowth_streak",
)


@dataclass
class SpineState:
    """Dendritic-spine state of every potential synapse of one projection (SD-SNN section 1).

    All arrays have the projection's shape ``(n_source, n_target)``.

    Attributes
    ----------
    lower, upper : ndarray of float64
        Spine range ``[r_lower, r_upper]``: the capacity the synaptic weight is constrained to
        (same unit as the weight: normalised membrane potential).
    upper_streak, lower_streak : ndarray of int32
        Consecutive development steps at which ``w >= upper`` (``w <= lower``).
    upper_excess, lower_excess : ndarray of float64
        Summed excess ``w - upper`` (``lower - w``) over the current streak.
    shrink_streak : ndarray of int32
        Consecutive development steps at which ``|w|`` decreased (persistent depression).
    previous_abs_weight : ndarray of float64
        ``|w|`` at the previous development step.
    regrowth_streak : ndarray of int32
        Consecutive development steps at which an absent synapse's latent weight exceeded the
        layer's regeneration percentile (section 3).
    """

    lower: np.ndarray
    upper: np.ndarray
    upper_streak: np.ndarray
    upper_excess: np.ndarray
    lower_streak: np.ndarray
    lower_excess: np.ndarray
    shrink_streak: np.ndarray
    previous_abs_weight: np.ndarray
    regrowth_streak: np.ndarray

    @classmethod
    def from_weights(cls, weight: np.ndarray) -> "SpineState":
        """Initial spine state: every range is ``[-max(w), max(w)]`` of the layer (released code).

        Parameters
        ----------
        weight : ndarray
            Initial weights of the projection, shape ``(n_source, n_target)``.
        """
        weight = np.asarray(weight, dtype=np.float64)
        bound = float(np.max(weight)) if weight.size else 0.0
        bound = abs(bound)
        shape = weight.shape
        return cls(
            lower=np.full(shape, -bound),
            upper=np.full(shape, bound),
            upper_streak=np.zeros(shape, np.int32),
            upper_excess=np.zeros(shape),
            lower_streak=np.zeros(shape, np.int32),
            lower_excess=np.zeros(shape),
            shrink_streak=np.zeros(shape, np.int32),
            previous_abs_weight=np.abs(weight).copy(),
            regrowth_streak=np.zeros(shape, np.int32),
        )

    def copy(self) -> "SpineState":
        """A deep copy (every array copied)."""
        return SpineState(**{name: getattr(self, name).copy() for name in SPINE_FIELDS})

    @property
    def width(self) -> np.ndarray:
        """Spine width ``upper + |lower|`` of every potential synapse."""
        return self.upper + np.abs(self.lower)


@dataclass
class Projection:
    """All potential synapses from one population to another.

    Attributes
    ----------
    name : str
        Unique name, also the name of the Brian2 ``Synapses`` object (e.g. ``"input_to_hidden_1"``).
    source, target : str
        Names of the presynaptic and postsynaptic populations.
    weight : ndarray of float64 (or float32), shape (n_source, n_target)
        Weight (existing synapses) or latent weight (pruned synapses), in units of the normalised
        membrane potential (a weight of 1 brings a resting neuron to threshold). float32 arrays
        stay float32 (a learner with ``dtype = "float32"`` trains them so); any other type becomes
        float64. The spine state is float64 either way.
    exists : ndarray of bool, shape (n_source, n_target)
        Which synapses are present.
    spine : SpineState
        Dendritic-spine state of every potential synapse.
    geometry : Geometry or None
        None: one weight per synapse (fully connected, ``weight[i, j]`` is the synapse ``i -> j``).
        Otherwise the arrays hold shared parameters of shape ``geometry.parameter_shape`` (a
        convolution's kernel elements, or a dense layer fed by channels, with average pooling
        folded in), and ``geometry.synapses()`` lists the synapses.
    """

    name: str
    source: str
    target: str
    weight: np.ndarray
    exists: np.ndarray
    spine: SpineState
    geometry: Geometry | None = None

    def __post_init__(self) -> None:
        weight = np.asarray(self.weight)
        self.weight = weight if weight.dtype == np.float32 else weight.astype(np.float64, copy=False)
        self.exists = np.asarray(self.exists, dtype=bool)
        if self.weight.ndim != 2:
            raise ValueError(
                f"Projection {self.name!r}: weight must be a 2-D (n_source, n_target) array, "
                f"got shape {self.weight.shape}"
            )
        if self.exists.shape != self.weight.shape:
            raise ValueError(
                f"Projection {self.name!r}: exists has shape {self.exists.shape}, "
                f"expected the weight's shape {self.weight.shape}"
            )
        for name in SPINE_FIELDS:
            if getattr(self.spine, name).shape != self.weight.shape:
                raise ValueError(
                    f"Projection {self.name!r}: spine.{name} has shape "
                    f"{getattr(self.spine, name).shape}, expected {self.weight.shape}"
                )
        if self.geometry is not None:
            if not isinstance(self.geometry, Geometry):
                raise ValueError(
                    f"Projection {self.name!r}: geometry must be a sdsnn_bio.geometry.Geometry or "
                    f"None, got {type(self.geometry).__name__}"
                )
            if self.weight.shape != self.geometry.parameter_shape:
                raise ValueError(
                    f"Projection {self.name!r}: a {self.geometry.kind} geometry has parameters of shape "
                    f"{self.geometry.parameter_shape}, got weight of shape {self.weight.shape}"
                )

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the parameter arrays: ``(n_source, n_target)`` without geometry."""
        return self.weight.shape  # type: ignore[return-value]

    @property
    def shared(self) -> bool:
        """True if parameters are shared by synapses (the projection has a geometry)."""
        return self.geometry is not None

    @property
    def n_synapses(self) -> int:
        """Number of existing synapses."""
        return int(np.count_nonzero(self.exists))

    @property
    def connectivity(self) -> float:
        """Fraction of potential synapses that exist."""
        return self.n_synapses / self.exists.size if self.exists.size else 0.0

    @property
    def i(self) -> np.ndarray:
        """Presynaptic indices of the existing synapses (row-major order)."""
        return np.nonzero(self.exists)[0].astype(np.int32)

    @property
    def j(self) -> np.ndarray:
        """Postsynaptic indices of the existing synapses (row-major order)."""
        return np.nonzero(self.exists)[1].astype(np.int32)

    @property
    def n_potential_synapses(self) -> int:
        """Potential synapses of the projection.

        Synapses between the two populations if every parameter existed (a shared parameter
        counts once per synapse that shares it).
        """
        return int(self.exists.size if self.geometry is None else self.geometry.n_synapses)

    def fan_out(self) -> np.ndarray:
        """Existing outgoing synapses of each presynaptic neuron, shape (n_source_neurons,)."""
        if self.geometry is None:
            return self.exists.sum(axis=1)
        listed = self.geometry.synapses()
        present = self.exists.ravel()[listed.parameter_index]
        return np.bincount(listed.pre[present], minlength=self.geometry.n_source)

    def effective_weight(self) -> np.ndarray:
        """Weights as the network sees them: latent weights of absent synapses count 0."""
        return np.where(self.exists, self.weight, 0.0)

    def copy(self) -> "Projection":
        """A deep copy (every array copied)."""
        return Projection(
            self.name, self.source, self.target, self.weight.copy(), self.exists.copy(),
            self.spine.copy(), self.geometry,
        )


@dataclass
class Population:
    """A group of neurons.

    Attributes
    ----------
    name : str
        Unique name, also the name of the Brian2 group (``"input"``, ``"hidden_1"``, ``"output"``).
    size : int
        Number of neurons.
    alive : ndarray of bool, shape (n_units,)
        False for pruned units (they emit no spike and have no synapses). A unit is a neuron, or a
        channel when the population has a ``shape``.
    shape : tuple of int or None
        ``(channels, height, width)`` of a convolutional population (neurons numbered
        channel-major), None for a layer of independent neurons.
    """

    name: str
    size: int
    alive: np.ndarray = field(default=None)  # type: ignore[assignment]
    shape: tuple | None = None

    def __post_init__(self) -> None:
        if self.shape is not None:
            self.shape = tuple(int(v) for v in self.shape)
            if len(self.shape) != 3 or min(self.shape) < 1 or int(np.prod(self.shape)) != self.size:
                raise ValueError(
                    f"Population {self.name!r}: shape must be (channels, height, width) with "
                    f"{self.size} neurons in all, got {self.shape}"
                )
        if self.alive is None:
            self.alive = np.ones(self.n_units, dtype=bool)
        self.alive = np.asarray(self.alive, dtype=bool)
        if self.alive.shape != (self.n_units,):
            raise ValueError(
                f"Population {self.name!r}: alive has shape {self.alive.shape}, "
                f"expected ({self.n_units},) ({'channels' if self.shape else 'neurons'})"
            )

    @property
    def n_units(self) -> int:
        """Units that development ranks and prunes: channels, or neurons."""
        return self.shape[0] if self.shape is not None else self.size

    @property
    def n_alive(self) -> int:
        """Alive units (neurons, or channels of a convolutional population)."""
        return int(np.count_nonzero(self.alive))

    @property
    def neuron_alive(self) -> np.ndarray:
        """``alive`` of every neuron, shape (size,): a channel's value repeated over its positions."""
        if self.shape is None:
            return self.alive
        return np.repeat(self.alive, self.size // self.n_units)

    @property
    def n_neurons_alive(self) -> int:
        """Alive neurons (an alive channel counts all its positions)."""
        return self.n_alive * (self.size // self.n_units)

    def copy(self) -> "Population":
        """A deep copy (every array copied)."""
        return Population(self.name, self.size, self.alive.copy(), self.shape)


@dataclass
class Structure:
    """Populations and the feed-forward projections between them.

    Populations are ordered input first, output last; projection ``k`` connects population ``k``
    to population ``k + 1``. Objects are found by name, never by position.
    """

    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]

    def __post_init__(self) -> None:
        self.populations = tuple(self.populations)
        self.projections = tuple(self.projections)
        names = [p.name for p in self.populations] + [p.name for p in self.projections]
        if len(set(names)) != len(names):
            raise ValueError(f"Structure: names must be unique, got {names}")
        sizes = {p.name: p.size for p in self.populations}
        by_name = {p.name: p for p in self.populations}
        for proj in self.projections:
            if proj.geometry is not None:
                self._check_geometry(proj, by_name)
                continue
            for end in (proj.source, proj.target):
                if end in by_name and by_name[end].shape is not None:
                    raise ValueError(
                        f"Projection {proj.name!r}: population {end!r} has channels "
                        f"{by_name[end].shape}; a projection from or into it needs a geometry"
                    )
            for end, expected in ((proj.source, proj.shape[0]), (proj.target, proj.shape[1])):
                if end not in sizes:
                    raise ValueError(
                        f"Projection {proj.name!r} refers to unknown population {end!r}; "
                        f"known: {sorted(sizes)}"
                    )
                if sizes[end] != expected:
                    raise ValueError(
                        f"Projection {proj.name!r}: population {end!r} has {sizes[end]} neurons "
                        f"but the weight matrix has {expected} along that axis"
                    )

    @staticmethod
    def _check_geometry(proj: Projection, by_name: dict) -> None:
        geometry = proj.geometry
        for end in (proj.source, proj.target):
            if end not in by_name:
                raise ValueError(
                    f"Projection {proj.name!r} refers to unknown population {end!r}; "
                    f"known: {sorted(by_name)}"
                )
        source, target = by_name[proj.source], by_name[proj.target]
        if source.shape != geometry.source_shape:
            raise ValueError(
                f"Projection {proj.name!r}: its geometry reads a source of shape "
                f"{geometry.source_shape}, population {source.name!r} has shape {source.shape}"
            )
        expected = geometry.target_shape if geometry.kind == "convolution" else None
        if target.shape != expected or target.size != geometry.n_target:
            raise ValueError(
                f"Projection {proj.name!r}: its {geometry.kind} geometry produces "
                f"{geometry.n_target} neurons of shape {geometry.target_shape}, population "
                f"{target.name!r} has {target.size} neurons of shape {target.shape}"
            )

    def row_units(self, projection: Projection) -> np.ndarray:
        """Unit of the source population (neuron or channel) read by each parameter row."""
        if projection.geometry is not None:
            return projection.geometry.row_channel()
        return np.arange(projection.shape[0])

    # ------------------------------------------------------------------ lookup
    def population(self, name: str) -> Population:
        """The population named ``name`` (KeyError listing the names otherwise)."""
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(f"no population named {name!r}; known: {[p.name for p in self.populations]}")

    def projection(self, name: str) -> Projection:
        """The projection named ``name`` (KeyError listing the names otherwise)."""
        for proj in self.projections:
            if proj.name == name:
                return proj
        raise KeyError(f"no projection named {name!r}; known: {[p.name for p in self.projections]}")

    def projection_into(self, population: str) -> Projection:
        """The projection whose target is ``population``."""
        for proj in self.projections:
            if proj.target == population:
                return proj
        raise KeyError(f"no projection targets population {population!r}")

    def projection_from(self, population: str) -> Projection | None:
        """The projection whose source is ``population`` (None for the output layer)."""
        for proj in self.projections:
            if proj.source == population:
                return proj
        return None

    @property
    def hidden_populations(self) -> tuple[Population, ...]:
        """Populations between the input and the output (the ones that can be pruned)."""
        return self.populations[1:-1]

    def copy(self) -> "Structure":
        """A deep copy (every array copied)."""
        return Structure(
            tuple(p.copy() for p in self.populations),
            tuple(p.copy() for p in self.projections),
        )

    # ------------------------------------------------------------------ summaries
    def summary(self) -> dict:
        """Connectivity per projection and neurons alive per population (JSON-ready)."""
        return {
            "projections": {
                p.name: {
                    "synapses": p.n_synapses,
                    "potential": int(p.exists.size),
                    "connectivity": p.connectivity,
                }
                for p in self.projections
            },
            "neurons_alive": {p.name: p.n_neurons_alive for p in self.populations},
            "neurons": {p.name: p.size for p in self.populations},
            **({"channels_alive": {p.name: p.n_alive for p in self.populations if p.shape},
                "channels": {p.name: p.n_units for p in self.populations if p.shape}}
               if any(p.shape for p in self.populations) else {}),
        }

    # ------------------------------------------------------------------ persistence
    def to_arrays(self, prefix: str = "structure") -> dict[str, np.ndarray]:
        """Flatten into named arrays (for ``.npz`` files and checkpoints)."""
        arrays: dict[str, np.ndarray] = {
            f"{prefix}/populations": np.array([p.name for p in self.populations]),
            f"{prefix}/projections": np.array(
                [[p.name, p.source, p.target] for p in self.projections]
            ).reshape(-1, 3),
        }
        for pop in self.populations:
            arrays[f"{prefix}/population/{pop.name}/alive"] = pop.alive
            if pop.shape is not None:
                arrays[f"{prefix}/population/{pop.name}/shape"] = np.array(pop.shape, dtype=np.int64)
        for proj in self.projections:
            base = f"{prefix}/projection/{proj.name}"
            arrays[f"{base}/weight"] = proj.weight
            arrays[f"{base}/exists"] = proj.exists
            if proj.geometry is not None:
                arrays[f"{base}/geometry"] = proj.geometry.to_array()
            for name in SPINE_FIELDS:
                arrays[f"{base}/spine/{name}"] = getattr(proj.spine, name)
        return arrays

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "structure", source: str = "arrays") -> "Structure":
        """Inverse of :meth:`to_arrays`; ``source`` names the file in error messages."""
        keys = set(arrays.keys()) if hasattr(arrays, "keys") else set(arrays.files)

        def optional(key: str):
            return np.array(arrays[key]) if key in keys else None

        try:
            populations = []
            for name in arrays[f"{prefix}/populations"]:
                alive = np.array(arrays[f"{prefix}/population/{name}/alive"])
                shape = optional(f"{prefix}/population/{name}/shape")
                size = alive.size if shape is None else int(np.prod(shape))
                populations.append(Population(str(name), int(size), alive,
                                              None if shape is None else tuple(shape.tolist())))
            populations = tuple(populations)
            projections = []
            for name, src, tgt in arrays[f"{prefix}/projections"]:
                base = f"{prefix}/projection/{name}"
                spine = SpineState(**{
                    field_name: np.array(arrays[f"{base}/spine/{field_name}"])
                    for field_name in SPINE_FIELDS
                })
                geometry = optional(f"{base}/geometry")
                projections.append(Projection(
                    str(name), str(src), str(tgt), np.array(arrays[f"{base}/weight"]),
                    np.array(arrays[f"{base}/exists"]), spine,
                    None if geometry is None else Geometry.from_array(geometry),
                ))
        except KeyError as err:
            raise ValueError(
                f"{source}: not a sdsnn_bio structure (missing array {err.args[0]!r})"
            ) from None
        return cls(populations, tuple(projections))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the structure to ``path`` (``.npz``) atomically."""
        return atomic_save_npz(path, self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Structure":
        """Read a structure written by :meth:`save` (``.npz``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"structure file {path} does not exist")
        with np.load(path, allow_pickle=False) as data:
            return cls.from_arrays(data, source=str(path))


def atomic_save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Save ``arrays`` to ``path`` as an uncompressed ``.npz``: temporary file, then rename.

    A reader never sees a half-written file and an existing file is replaced only once the new
    one is complete.
    """
    with atomic_open(path) as handle:
        np.savez(handle, **arrays)
    return Path(path)

"""The structural-plasticity scheduler: development between Brian2 runs (NEST-style chunks).

Brian2 cannot delete synapses (brian2 issue #166). Between simulation runs the scheduler

1. takes the structure shared with the learner (its weights are the learner's latest); with
   ``read_network=True`` it first pulls the spine variables of the Brian2 ``Synapses`` (so that
   edits made on the Brian2 objects count);
2. applies the SD-SNN rules that the :class:`~sdsnn_bio.development.schedule.Schedule` says are due
   (pure functions of :mod:`sdsnn_bio.development.rules`): spine update, synaptic constraint,
   synaptic regeneration, neuron pruning with the neurotrophic rate;
3. silences pruned neurons (``alive = False``) and sets the layers' ``pruning_rate``,
   ``trophic_pressure`` and ``importance``; with ``sync="eager"`` (default) it also rebuilds the
   ``Synapses`` objects whose connectivity changed (same names, so Brian2 reuses the generated
   code) and writes every projection's weights. The spine variables of rebuilt projections are
   written at once, those of the others at every step with ``mirror_spines=True``, else by the
   next ``network.load_structure`` (which every Brian2 run of sdsnn_bio starts with): writing 9
   variables of 1.85 M synapses costs ~0.1 s per step. With ``sync="lazy"`` the synapses
   (connectivity, weights, spine variables) are left to the next ``network.load_structure``
   (or :meth:`StructuralScheduler.sync`), which rebuilds what changed under the same names: for
   training, where Brian2 does not run between steps;
4. tells the learner which synapses regrew or were removed (``Learner.structure_changed``), so
   their optimiser moments restart and its state stays aligned with the structure;
5. returns a JSON-ready record of what changed.

After a step (``sync="eager"``), or after the next ``network.load_structure`` (``sync="lazy"``),
the Brian2 network simulates exactly like one freshly built from the structure. The scheduler
only changes connectivity and state; it never trains. Beyond the SD-SNN rules,
:meth:`StructuralScheduler.prune` and :meth:`StructuralScheduler.regrow` remove or restore synapses
of a live network with Brian2-style string conditions (:mod:`sdsnn_bio.development.conditions`).
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import numpy as np

from ..structure import SPINE_FIELDS, Projection, SpineState, Structure

__all__ = ["DevelopingNetwork", "StructureLearner", "StructuralScheduler", "TRACKED_SYNAPSES"]


@runtime_checkable
class DevelopingNetwork(Protocol):
    """What :class:`StructuralScheduler` needs of the network it develops.

    :class:`sdsnn_bio.model.SpikingNetwork` (the Brian2 network of record) is one; any object with
    these methods can be developed (the scheduler never imports the model).
    """

    def load_structure(self, structure: Structure) -> list[str]:
        """Bring every projection and population in line with ``structure``.

        Returns the names of the rebuilt projections.
        """

    def update_projection(self, projection: Projection) -> bool:
        """Write one projection's weights and spine state (rebuilt if its connectivity changed).

        Returns whether it was rebuilt.
        """

    def write_weights(self, projection: Projection) -> None:
        """Write the weights of ``projection`` (connectivity unchanged)."""

    def read_synapse_state(self, projection: str) -> dict[str, np.ndarray]:
        """Current synaptic variables of ``projection`` (``parameter_index`` and the spine state)."""

    def set_alive(self, population: str, alive: np.ndarray) -> None:
        """Silence (False) or keep (True) the neurons (or channels) of ``population``."""

    def set_shared(self, population: str, **values: float) -> None:
        """Set shared per-layer variables (``pruning_rate``, ``trophic_pressure``)."""

    def set_importance(self, population: str, importance: np.ndarray) -> None:
        """Importance per neuron (or per channel) of ``population``."""


@runtime_checkable
class StructureLearner(Protocol):
    """What :class:`StructuralScheduler` needs of the learner training the shared structure.

    :class:`sdsnn_bio.learning.Learner` is one. The scheduler writes the developed weights into
    the structure's arrays in place (the learner holds them) and then tells the learner which
    synapses appeared or vanished, so its optimiser state stays aligned. A learner may also hold
    ``last_spike_counts`` (per population, spikes per sample of the latest batch), from which the
    development log reports synaptic operations.
    """

    def structure_changed(self, changed: dict[str, np.ndarray]) -> None:
        """Restart the optimiser state of the synapses where ``changed[projection]`` is True."""

#: Synapses per projection whose weight and spine range are logged at every step (figures).
TRACKED_SYNAPSES = 8


def _mean_width(projection) -> float:
    """Mean spine width ``upper + |lower|`` of the existing synapses (0 if there are none)."""
    n = projection.n_synapses
    if n == 0:
        return 0.0
    spine = projection.spine
    total = np.sum(spine.upper, where=projection.exists) + np.sum(np.abs(spine.lower), where=projection.exists)
    return float(total / n)


def _members(protocol: type) -> list[str]:
    """The methods a protocol declares (for the error naming what an object lacks)."""
    return [name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")]


class StructuralScheduler:
    """Applies development to a Brian2 :class:`~sdsnn_bio.model.SpikingNetwork` between runs.

    Parameters
    ----------
    network : DevelopingNetwork
        The network to develop: the Brian2 :class:`~sdsnn_bio.model.SpikingNetwork` of record.
    structure : Structure
        The structure shared with the learner (changed in place).
    schedule : Schedule
        When each rule runs; warm-ups left at None are derived here from
        ``params.consecutive_steps`` (the resolved schedule is :attr:`schedule`).
    params : DevelopmentParameters
        The rules' constants.
    learner : StructureLearner, optional
        Told about regrown and removed synapses (a :class:`~sdsnn_bio.learning.Learner`).
    state : dict, optional
        A :meth:`state_dict` to resume from.
    mirror_spines : bool
        Write the spine variables of every projection into Brian2 at every step (default: only
        those of rebuilt projections; the rest at the next ``network.load_structure``).
    read_network : bool
        Pull the spine variables from the Brian2 objects before every step.
    monitors : sequence of DevelopmentMonitor, optional
        Record their variables after every step (:mod:`sdsnn_bio.development.monitor`); they are
        attached to the structure here, so an unknown source, variable or condition fails now.
    sync : {"eager", "lazy"}
        ``"eager"``: every step (and :meth:`prune`, :meth:`regrow`) brings the Brian2 synapses up
        to date, rebuilding the ``Synapses`` whose connectivity changed. ``"lazy"``: they change
        only the structure (and the neuron variables ``alive``, ``pruning_rate``,
        ``trophic_pressure``, ``importance``); the synapses reach Brian2 at the next
        ``network.load_structure(structure)`` or :meth:`sync`, so call one of them before
        simulating. Development logs are identical in both modes, except ``rebuilt`` (the
        ``Synapses`` rebuilt at that step: none with ``"lazy"``) and ``seconds``.
    """

    def __init__(self, network: DevelopingNetwork, structure: Structure, schedule, params,
                 learner: StructureLearner | None = None, state: dict | None = None, *,
                 mirror_spines: bool = False, read_network: bool = False, sync: str = "eager",
                 monitors=()) -> None:
        from .rules import DevelopmentState

        if sync not in ("eager", "lazy"):
            raise ValueError(f"StructuralScheduler: sync must be 'eager' or 'lazy', got {sync!r}")
        if sync == "lazy" and (mirror_spines or read_network):
            raise ValueError(
                "StructuralScheduler: mirror_spines=True and read_network=True need sync='eager' "
                "(with sync='lazy' the Brian2 synapses are out of date between steps)"
            )
        for role, value, protocol in (("network", network, DevelopingNetwork),
                                      ("learner", learner, StructureLearner)):
            if value is not None and not isinstance(value, protocol):
                missing = [name for name in _members(protocol) if not hasattr(value, name)]
                raise TypeError(
                    f"StructuralScheduler: {role} must provide the methods of {protocol.__name__} "
                    f"({type(value).__name__} lacks {sorted(missing)})"
                )
        self.network = network
        self.structure = structure
        #: The schedule in force, warm-ups derived from ``params.consecutive_steps``.
        self.schedule = schedule.resolve(params.consecutive_steps, params.initialisation_steps)
        self.params = params
        self.learner = learner
        self.mirror_spines = bool(mirror_spines)
        self.read_network = bool(read_network)
        self.sync_mode = sync
        from .monitor import _check_names

        self.monitors = list(monitors)
        _check_names(self.monitors)
        for monitor in self.monitors:
            monitor.attach(structure)
        if state is None:
            self.state = DevelopmentState.initial(structure, params)
            self.tracked = self._choose_tracked()
        else:
            self.state = DevelopmentState.from_dict(state["rules"])
            self.tracked = {k: (np.asarray(v[0]), np.asarray(v[1])) for k, v in state["tracked"].items()}

    def _choose_tracked(self) -> dict:
        rng = np.random.default_rng(len(self.structure.projections))
        tracked = {}
        for projection in self.structure.projections:
            n_source, n_target = projection.shape
            count = min(TRACKED_SYNAPSES, projection.exists.size)
            flat = rng.choice(projection.exists.size, size=count, replace=False)
            tracked[projection.name] = (flat // n_target, flat % n_target)
        return tracked

    def state_dict(self) -> dict:
        """JSON-ready state (for checkpoints)."""
        return {
            "rules": self.state.to_dict(),
            "tracked": {k: [i.tolist(), j.tolist()] for k, (i, j) in self.tracked.items()},
        }

    # ------------------------------------------------------------------ Brian2 seam
    def _read_from_network(self) -> None:
        """Copy the spine state of existing synapses from the Brian2 objects (``read_network``).

        The weights are the learner's (the structure's): Brian2 holds them only since the last
        write, so they are not read back.
        """
        for projection in self.structure.projections:
            if projection.geometry is not None:
                continue  # shared kernel elements keep their spine state in the structure only
            state = self.network.read_synapse_state(projection.name)
            index = state["parameter_index"]
            for name in SPINE_FIELDS:
                np.put(getattr(projection.spine, name), index, state[name])

    def _write_to_network(self, changed: dict[str, bool]) -> list[str]:
        """Bring the Brian2 network in line with the structure; returns the rebuilt projections.

        With ``sync="lazy"`` only the neurons' ``alive`` is written (the synapses wait for the next
        ``load_structure``).
        """
        if self.mirror_spines:
            return self.network.load_structure(self.structure)
        rebuilt = []
        if self.sync_mode == "eager":
            for projection in self.structure.projections:
                if changed[projection.name]:
                    if self.network.update_projection(projection):
                        rebuilt.append(projection.name)
                else:
                    self.network.write_weights(projection)
        for population in self.structure.populations[1:]:
            self.network.set_alive(population.name, population.alive)
        return rebuilt

    def sync(self) -> list[str]:
        """Bring the Brian2 network up to date with the structure (``network.load_structure``).

        Returns the names of the projections whose ``Synapses`` were rebuilt.
        """
        return self.network.load_structure(self.structure)

    def _sops(self) -> float | None:
        """SOPs per sample of the latest training batch with the new connectivity (kernel spikes)."""
        counts = getattr(self.learner, "last_spike_counts", None)
        if not counts:
            return None
        from ..energy import synaptic_operations

        sops = synaptic_operations(counts, self.structure)
        return float(sum(float(v[0]) for v in sops.values()))

    # ------------------------------------------------------------------ steps
    def after_batch(self, batch_index: int, batches_per_epoch: int) -> dict | None:
        """Run a development step if one is due after this batch.

        Run a development step if the schedule says batch ``batch_index`` (1-based, counted over
        all epochs, ``batches_per_epoch`` per epoch) ends one.
        """
        if not self.schedule.is_development_batch(batch_index, batches_per_epoch):
            return None
        return self.step()

    def step(self) -> dict:
        """One development step; returns the record of what changed."""
        from .rules import develop_structure

        started = time.perf_counter()
        if self.read_network:
            self._read_from_network()
        before_alive = {p.name: p.alive.copy() for p in self.structure.populations}
        actions = self.schedule.actions(self.state.step)
        developed, record, self.state = develop_structure(self.structure, actions, self.params, self.state)

        added, removed, restarted = {}, {}, {}
        for mine, theirs in zip(self.structure.projections, developed.projections):
            grown = theirs.exists & ~mine.exists
            lost = mine.exists & ~theirs.exists
            added[mine.name], removed[mine.name] = int(np.count_nonzero(grown)), int(np.count_nonzero(lost))
            # Regrown synapses and removed ones (whose latent weight may restart from 0) get fresh
            # optimiser moments.
            restarted[mine.name] = np.logical_or(grown, lost, out=grown)
            if theirs.weight is not mine.weight:  # unchanged arrays are shared (copy on write)
                mine.weight[...] = theirs.weight  # in place: the learner holds these arrays
            if removed[mine.name] or added[mine.name]:
                mine.exists[...] = theirs.exists
            mine.spine = SpineState(**{name: getattr(theirs.spine, name) for name in SPINE_FIELDS})
        for mine, theirs in zip(self.structure.populations, developed.populations):
            mine.alive[...] = theirs.alive
        rebuilt = self._write_to_network({name: bool(mask.any()) for name, mask in restarted.items()})
        populations = record.populations
        for population in self.structure.hidden_populations:
            rate = self.state.pruning_rates.get(population.name)
            if rate is not None:
                self.network.set_shared(population.name, pruning_rate=float(rate))
            if population.name in populations:
                self.network.set_shared(
                    population.name, trophic_pressure=float(populations[population.name]["trophic_pressure"])
                )
            if population.name in record.importance:
                self.network.set_importance(population.name, record.importance[population.name])
        if self.learner is not None:
            self.learner.structure_changed(restarted)
        for monitor in self.monitors:
            monitor.record(self.state.step, self.structure, self.state.pruning_rates)

        out = {
            "development_step": int(self.state.step),
            "actions": record.actions.to_dict(),  # what ran (released: nothing at the first step)
            "pruning_rates": {k: float(v) for k, v in self.state.pruning_rates.items()},
            "regeneration_percentile": record.regeneration_percentile,
            "neurons_alive": {p.name: p.n_alive for p in self.structure.populations},
            "neurons_pruned": {p.name: int(np.count_nonzero(before_alive[p.name] & ~p.alive))
                               for p in self.structure.hidden_populations},
            "neurons_revived": {p.name: int(np.count_nonzero(~before_alive[p.name] & p.alive))
                                for p in self.structure.hidden_populations},
            "synapses": {p.name: p.n_synapses for p in self.structure.projections},
            "synapses_removed": removed,
            "synapses_added": added,
            "mean_spine_width": {p.name: _mean_width(p) for p in self.structure.projections},
            "tracked_synapses": {
                p.name: {
                    "w": p.weight[self.tracked[p.name]].tolist(),
                    "lower": p.spine.lower[self.tracked[p.name]].tolist(),
                    "upper": p.spine.upper[self.tracked[p.name]].tolist(),
                    "exists": p.exists[self.tracked[p.name]].tolist(),
                }
                for p in self.structure.projections
            },
            "sops_per_sample": self._sops(),
            "rules": record.to_dict(),
            "rebuilt": rebuilt,
            "seconds": time.perf_counter() - started,
        }
        return out

    # ------------------------------------------------------------------ conditional changes
    def _apply(self, projection_name: str, change) -> tuple[np.ndarray, np.ndarray]:
        """Apply ``change`` to one projection, rebuild its ``Synapses`` (eager), tell the learner."""
        if self.read_network:
            self._read_from_network()
        mine = self.structure.projection(projection_name)
        result = change(
            mine,
            self.structure.population(mine.source).alive,
            self.structure.population(mine.target).alive,
        )
        changed = result.projection.exists != mine.exists  # regrown or removed: fresh moments
        mine.weight[...] = result.projection.weight  # in place: the learner holds these arrays
        mine.exists[...] = result.projection.exists
        mine.spine = result.projection.spine
        self._write_to_network({p.name: p.name == projection_name for p in self.structure.projections})
        if self.learner is not None:
            self.learner.structure_changed({projection_name: changed})
        return result.i, result.j

    def prune(self, projection: str, condition: str = "abs(w) < 0.01", *,
              rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Remove the synapses of ``projection`` where the Brian2-style ``condition`` holds.

        The ``Synapses`` object is rebuilt with the same name (with ``sync="lazy"``: at the next
        ``network.load_structure``); latent weights and spine state are kept. Returns the
        ``(i, j)`` indices of the removed synapses. See
        :func:`sdsnn_bio.development.conditions.prune` for the condition's variables
        (``alive_pre`` and ``alive_post`` are available here).
        """
        from .conditions import prune

        return self._apply(projection, lambda p, pre, post: prune(
            p, condition, source_alive=pre, target_alive=post, rng=rng))

    def regrow(self, projection: str, condition: str, *, w=None,
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Restore the absent synapses of ``projection`` between alive neurons where ``condition`` holds.

        ``w``: None keeps their latent weight, or a number or an expression (see
        :func:`sdsnn_bio.development.conditions.regrow`). The learner's optimiser moments of the
        regrown synapses restart. Returns the ``(i, j)`` indices of the regrown synapses.
        """
        from .conditions import regrow

        return self._apply(projection, lambda p, pre, post: regrow(
            p, condition, w=w, source_alive=pre, target_alive=post, rng=rng))

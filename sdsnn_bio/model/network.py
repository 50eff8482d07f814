"""The Brian2 network of record: the only module that creates Brian2 objects.

``SpikingNetwork`` builds one explicit, named Brian2 ``Network`` from a :class:`~sdsnn_bio.structure.Structure`:

* ``input``: a ``SpikeGeneratorGroup`` of ``n_input`` channels (N-MNIST: ``(p*34 + y)*34 + x``);
  with direct encoding (``NetworkParameters.direct_input``) a ``NeuronGroup`` of ``n_input``
  analog channels instead (:data:`DIRECT_INPUT_EQUATIONS`, below);
* ``hidden_1`` ... ``hidden_L`` and ``output``: ``NeuronGroup`` objects of the neuron model in force
  (:mod:`sdsnn_bio.model.neurons`; LIF by default), with what the synapse model adds to them;
* one ``Synapses`` object per projection, of the synapse model in force
  (:mod:`sdsnn_bio.model.synapses`), named like the projection (``input_to_hidden_1``), built
  from the projection's existing ``(i, j)`` pairs and carrying weight and spine state;
* a projection with a geometry (convolution, or a dense layer fed by channels, average pooling
  folded in: :mod:`sdsnn_bio.geometry`) is built with explicit ``i``/``j`` arrays from
  ``geometry.synapses()``; each synapse carries ``kernel_index``, the flat index of its kernel
  element in the projection's parameter arrays, and ``pooling_factor``. The shared weight is stored
  once per kernel element in the structure and gathered to the synapses
  (``w = pooling_factor * kernel_weight[kernel_index]``); the spine state stays per kernel element
  in the structure (not copied to every synapse). A kernel element that does not exist removes all
  the synapses that share it;
* a ``SpikeMonitor`` per neuron group (``<group>_spikes``) and, optionally, ``StateMonitor``s of the
  potential (``<group>_potential``) recorded after the state update and before the threshold, i.e.
  the potential the threshold is tested on.

Many samples are presented in one ``run()``: sample ``b`` occupies the window
``[b*T*dt, (b+1)*T*dt)`` and a ``run_regularly`` operation resets every neuron to rest (and forgets
refractoriness) at the start of each window, so samples do not interact.

Brian2 cannot delete synapses (brian2 issue #166). When development changes a projection's
connectivity, :meth:`SpikingNetwork.rebuild_projection` removes its ``Synapses`` object from the
network and adds a new one *with the same name*, so the generated code is reused.

Direct (analog) input. The ``input`` group holds the intensity ``x`` of every channel, written at
the start of each sample window from a ``TimedArray`` of the batch's intensities (one row per
window, ``x = direct_input(t - presentation_start, i)``, a ``run_regularly`` on the window clock),
and constant during the window. A channel with ``x != 0`` emits an event at every step
(``threshold = "x != 0"``, no reset, no refractoriness), and the input projection delivers
``w * x_pre`` instead of ``w``: its ``on_pre`` is the synapse model's with ``w`` replaced by
``w * x_pre`` (Brian2's ``word_substitute``; voltage jumps: ``v_post += w * x_pre``). Every step
each neuron of the first layer thus receives ``J = sum_c w_c x_c``, the analog current the training
kernel integrates (:mod:`sdsnn_bio.learning.learner`, tested spike for spike, fully connected and
convolutional: the convolution's explicit synapses deliver the same way). Events rather than a
``(summed)`` synaptic variable were chosen so that the input enters exactly where a spike's
weight enters in every synapse model, with Brian2's own ordering and refractoriness rules
(a summed variable would need one more neuron-side operation per synapse model), and so that
channels with ``x = 0`` (most of an MNIST digit) cost nothing.

Per time step Brian2 executes, in order: state update (decay), threshold, synaptic propagation,
reset. Consequently input arriving during a step in which the neuron fires is discarded by the reset;
:mod:`sdsnn_bio.learning.kernel` reproduces exactly this order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from brian2 import (
    Clock,
    Equations,
    Network,
    NeuronGroup,
    SpikeGeneratorGroup,
    SpikeMonitor,
    StateMonitor,
    Synapses,
    TimedArray,
    prefs,
    second,
)
from brian2.utils.stringtools import word_substitute

from ..structure import SPINE_FIELDS, Population, Projection, Structure
from .equations import SPINE_VARIABLES
from .parameters import NetworkParameters

__all__ = ["SpikingNetwork", "Recording", "configure_brian2", "DIRECT_INPUT_EQUATIONS"]

logger = logging.getLogger(__name__)

_INTEGER_SPINE = {"upper_streak", "lower_streak", "shrink_streak", "regrowth_streak"}

#: The analog input channels of direct encoding (module docstring).
DIRECT_INPUT_EQUATIONS = Equations(
    """
    x : 1  # intensity of the channel in this sample window (normalised; multiplies w)
    presentation_start : second (shared)  # network time at which the batch's first window starts
    """
)

#: Written at the start of every sample window: the window's row of the batch's ``TimedArray``.
DIRECT_INPUT_UPDATE = "x = direct_input(t - presentation_start, i)"


def configure_brian2(target: str = "auto", cache_dir: str | Path | None = None) -> None:
    """Set Brian2's code-generation target (a Brian2 global preference), explicitly.

    Parameters
    ----------
    target : {"auto", "numpy", "cython"}
        ``"numpy"`` compiles nothing (best for tests and tiny networks); ``"cython"`` compiles
        each code object once (about 4.5 s each here) and runs large networks several times faster;
        ``"auto"`` lets Brian2 choose (Cython when available).
    cache_dir : path, optional
        Directory for Brian2's Cython cache (default: Brian2's own, ``~/.cython/brian_extensions``).
        Separate directories keep concurrent processes from sharing a cache.
    """
    if target not in ("auto", "numpy", "cython"):
        raise ValueError(
            f"simulation.codegen_target: expected 'auto', 'numpy' or 'cython', got {target!r}"
        )
    prefs.codegen.target = target
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        prefs.codegen.runtime.cython.cache_dir = str(cache_dir)


class _NetworkClock(Clock):
    """A Brian2 ``Clock`` whose hash does not depend on its memory address.

    Brian2's C++ standalone device writes the clocks' initialisation in the iteration order of a
    set of clocks. Hashed by address, that order changes from build to build and an unchanged
    network recompiles ``main.cpp``; with one hash for every such clock (equality stays identity),
    the set keeps the order in which Brian2 inserts the clocks, which follows its own sorted list of
    objects.
    """

    # Brian2 lets only properties of the instance's own class override its variables' setters.
    dt = Clock.dt
    dt_ = Clock.dt_

    def __hash__(self) -> int:
        return 0x5D5

    def __eq__(self, other) -> bool:
        return self is other


@dataclass(frozen=True)
class Recording:
    """Spikes (and optionally potentials) of one batch of samples presented to the network.

    Attributes
    ----------
    n_samples, n_steps : int
        Batch size B and time steps per sample T.
    spikes : dict[str, tuple of ndarray]
        Per population name: ``(sample, step, neuron)`` integer arrays, one entry per spike.
    potentials : dict[str, ndarray]
        Per monitored population: the potential tested against the threshold, shape (T, B, N).
    sizes : dict[str, int]
        Population sizes.
    """

    n_samples: int
    n_steps: int
    spikes: dict
    potentials: dict
    sizes: dict

    def dense_spikes(self, population: str) -> np.ndarray:
        """Spikes of ``population`` as a boolean array of shape (T, B, N)."""
        sample, step, neuron = self.spikes[population]
        out = np.zeros((self.n_steps, self.n_samples, self.sizes[population]), dtype=bool)
        out[step, sample, neuron] = True
        return out

    def spike_counts(self, population: str) -> np.ndarray:
        """Spike counts per sample and neuron, shape (B, N)."""
        sample, _, neuron = self.spikes[population]
        counts = np.zeros((self.n_samples, self.sizes[population]), dtype=np.int64)
        np.add.at(counts, (sample, neuron), 1)
        return counts


class SpikingNetwork:
    """Explicit Brian2 network built from a structure.

    Parameters
    ----------
    structure : Structure
        Populations (input first, output last) and projections; weights, spine state and alive
        masks are copied into the Brian2 objects.
    params : NetworkParameters
        Neuron models and time grid.
    record_potentials : sequence of str
        Neuron groups whose potential is recorded every step (costly for large groups; the
        output layer is cheap and gives the membrane read-out used to break ties).
    spine_state : bool
        Copy the spine state into the ``Synapses`` (default). ``False`` leaves the spine variables
        at zero: they never enter the dynamics, and the C++ standalone evaluation
        (:mod:`sdsnn_bio.model.standalone`) saves writing and reading nine arrays per synapse.
    """

    def __init__(
        self,
        structure: Structure,
        params: NetworkParameters,
        *,
        record_potentials: tuple[str, ...] = ("output",),
        spine_state: bool = True,
    ) -> None:
        self.params = params
        self._spine_state = spine_state
        names = tuple(p.name for p in structure.populations)
        if names != params.population_names:
            raise ValueError(
                f"structure populations {names} do not match the parameters' {params.population_names}"
            )
        self._dt = params.dt
        # Two clocks for all objects: the time step, and the sample window of the resets.
        self._clock = _NetworkClock(dt=params.dt, name="sdsnn_clock")
        self._window_clock = _NetworkClock(dt=params.window, name="sdsnn_window_clock")
        self._window_steps = params.n_steps
        self._steps_done = 0
        self._sizes = {p.name: p.size for p in structure.populations}
        self._groups: dict[str, object] = {}
        self._synapses: dict[str, Synapses] = {}
        self._synapse_pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._flat_index: dict[str, np.ndarray] = {}
        self._factor: dict[str, float] = {}
        self._positions = {p.name: p.size // p.n_units for p in structure.populations}
        self._built_exists: dict[str, np.ndarray] = {}
        self._spike_monitors: dict[str, SpikeMonitor] = {}
        self._potential_monitors: dict[str, StateMonitor] = {}

        objects = []
        if params.direct_input:
            source = NeuronGroup(
                params.n_input, DIRECT_INPUT_EQUATIONS, threshold="x != 0", reset="", clock=self._clock,
                namespace={"direct_input": self._intensity_table(np.zeros((1, params.n_input)))},
                name="input",
            )
            source.run_regularly(DIRECT_INPUT_UPDATE, clock=self._window_clock, when="start",
                                 name="input_intensity_update")
        else:
            source = SpikeGeneratorGroup(
                params.n_input, np.zeros(0, dtype=np.int32), np.zeros(0) * second, clock=self._clock,
                name="input",
            )
        self._groups["input"] = source
        objects.append(source)
        for population in structure.populations[1:]:
            group = self._make_neuron_group(population)
            objects.append(group)
            monitor = SpikeMonitor(group, name=f"{population.name}_spikes")
            self._spike_monitors[population.name] = monitor
            objects.append(monitor)
            if population.name in record_potentials:
                potential = StateMonitor(
                    group, "v", record=True, when="thresholds", order=-1, clock=self._clock,
                    name=f"{population.name}_potential",
                )
                self._potential_monitors[population.name] = potential
                objects.append(potential)
        for projection in structure.projections:
            synapses = self._make_synapses(projection)
            objects.append(synapses)
        unknown = set(record_potentials) - set(self._potential_monitors)
        if unknown:
            raise ValueError(
                f"record_potentials: unknown neuron groups {sorted(unknown)}; "
                f"known: {list(names[1:])}"
            )
        self.network = Network(*objects, name="sdsnn_network")

    # ------------------------------------------------------------------ construction
    def _make_neuron_group(self, population: Population) -> NeuronGroup:
        neuron = self.params.neuron_parameters(population.name)
        synapse = self.params.synapse  # a current-based synapse adds its current to the neurons
        equations = neuron.equations(synapse.neuron_input)
        if synapse.neuron_equations() is not None:
            equations = equations + synapse.neuron_equations()
        sample_reset = "\n".join(code for code in (neuron.sample_reset, synapse.sample_reset) if code)
        group = NeuronGroup(
            population.size,
            equations,
            threshold=neuron.threshold,
            reset=neuron.reset,
            refractory=neuron.refractory_expression,
            method="exact",
            namespace={**neuron.namespace(), **synapse.namespace()},
            clock=self._clock,
            name=population.name,
        )
        group.alive = population.neuron_alive
        group.run_regularly(
            sample_reset, clock=self._window_clock, when="start", name=f"{population.name}_sample_reset"
        )
        self._groups[population.name] = group
        return group

    def _intensity_table(self, values: np.ndarray) -> TimedArray:
        """The ``TimedArray`` of direct input: row ``b`` holds the intensities of window ``b``."""
        return TimedArray(values, dt=self.params.window, name="direct_input")

    def _make_synapses(self, projection: Projection) -> Synapses:
        shared = projection.geometry is not None
        on_pre = self.params.synapse.on_pre
        if self.params.direct_input and projection.source == "input":
            on_pre = word_substitute(on_pre, {"w": "w * x_pre"})  # analog input: delivers w * x
        synapses = Synapses(
            self._groups[projection.source],
            self._groups[projection.target],
            model=self.params.synapse.equations(shared=shared),
            on_pre=on_pre,
            clock=self._clock,
            namespace={},
            name=projection.name,
        )
        if shared:
            listed = projection.geometry.synapses()
            present = projection.exists.ravel()[listed.parameter_index]
            pre, post = listed.pre[present], listed.post[present]
            synapses.connect(i=pre, j=post)
            if not (np.array_equal(synapses.i[:], pre) and np.array_equal(synapses.j[:], post)):
                raise RuntimeError(  # kernel_index is written in the order the pairs were given
                    f"{projection.name}: Brian2 stored the synapses in another order than given"
                )
            kernel_index = listed.parameter_index[present]
            synapses.kernel_index[:] = kernel_index
            synapses.pooling_factor = listed.factor
            self._factor[projection.name] = listed.factor
        else:
            synapses.connect(i=projection.i, j=projection.j)
            self._factor[projection.name] = 1.0
        self._synapses[projection.name] = synapses
        # Brian2 may store synapses in its own order: remember it to address variables.
        pre = np.asarray(synapses.i[:], dtype=np.int64)
        post = np.asarray(synapses.j[:], dtype=np.int64)
        self._synapse_pairs[projection.name] = (pre, post)
        # Flat positions in the parameter arrays: one gather per variable, no 2-D indexing.
        if shared:
            # The values just written (the pairs are in the given order, checked above): under the
            # C++ standalone device a variable written with an index cannot be read before the run.
            self._flat_index[projection.name] = np.asarray(kernel_index, dtype=np.int64)
        else:
            self._flat_index[projection.name] = pre * projection.shape[1] + post
        self._built_exists[projection.name] = projection.exists.copy()
        self._write_synapse_state(projection)
        return synapses

    def _gathered_weights(self, projection: Projection) -> np.ndarray:
        """Each synapse's weight: its parameter, times the pooling factor of shared projections.

        Always float64 (Brian2's type), also for a structure trained in float32.
        """
        values = projection.weight.ravel()[self._flat_index[projection.name]].astype(np.float64, copy=False)
        factor = self._factor[projection.name]
        return values if factor == 1.0 else values * factor

    def _write_synapse_state(self, projection: Projection) -> None:
        synapses = self._synapses[projection.name]
        flat = self._flat_index[projection.name]
        if flat.size == 0:
            return
        synapses.w[:] = self._gathered_weights(projection)
        if projection.geometry is not None:
            return  # spine state is per kernel element, in the structure only
        if not self._spine_state:
            return
        for field_name in SPINE_FIELDS:
            values = getattr(projection.spine, field_name).ravel()[flat]
            synapses.state(SPINE_VARIABLES[field_name])[:] = values

    # ------------------------------------------------------------------ access
    def __getitem__(self, name: str):
        """Brian2 object by name (group, synapses or monitor)."""
        return self.network[name]

    @property
    def synapse_names(self) -> tuple[str, ...]:
        """Names of the Brian2 ``Synapses`` (one per projection)."""
        return tuple(self._synapses)

    def synapse_pairs(self, projection: str) -> tuple[np.ndarray, np.ndarray]:
        """``(i, j)`` of the synapses of ``projection`` in Brian2's storage order."""
        return self._synapse_pairs[projection]

    def read_synapse_state(self, projection: str) -> dict[str, np.ndarray]:
        """Current synaptic variables of ``projection``: ``i``, ``j``, ``w`` and the spine state.

        Keys of the spine state follow :data:`sdsnn_bio.structure.SPINE_FIELDS`; ``parameter_index``
        is the flat index of each synapse's entry in the projection's parameter arrays
        (``i * n_target + j`` for a fully-connected projection, ``kernel_index`` for a shared one,
        whose ``w`` includes the pooling factor and whose spine state is not on the synapses: it
        lives per kernel element in the structure, so no spine key is returned).
        """
        synapses = self._synapses[projection]
        i, j = self._synapse_pairs[projection]
        state = {"i": i.copy(), "j": j.copy(), "w": np.array(synapses.w[:], dtype=np.float64),
                 "parameter_index": self._flat_index[projection].copy()}
        if "kernel_index" in synapses.variables:
            return state
        for field_name in SPINE_FIELDS:
            values = np.asarray(synapses.state(SPINE_VARIABLES[field_name])[:])
            state[field_name] = values.astype(np.int32 if field_name in _INTEGER_SPINE else np.float64)
        return state

    def alive(self, population: str) -> np.ndarray:
        """The ``alive`` variable of ``population`` per neuron, as Brian2 holds it."""
        return np.asarray(self._groups[population].alive[:], dtype=bool)

    # ------------------------------------------------------------------ structural changes
    def rebuild_projection(self, projection: Projection) -> Synapses:
        """Replace the ``Synapses`` of ``projection`` by a new object with the same name.

        Brian2 cannot delete synapses; the fixed name lets Brian2 reuse the compiled code.
        """
        old = self._synapses.pop(projection.name)
        # Retired on purpose: mark it as having belonged to the network, so Brian2 does not warn
        # "never included in a network" when a rebuild replaces it before any run.
        old._network = self.network.id
        self.network.remove(old)
        new = self._make_synapses(projection)
        self.network.add(new)
        return new

    def update_projection(self, projection: Projection) -> bool:
        """Write weights and spine state; rebuild only if the connectivity changed.

        Returns
        -------
        bool
            True if the ``Synapses`` object was rebuilt.
        """
        if np.array_equal(self._built_exists[projection.name], projection.exists):
            self._write_synapse_state(projection)
            return False
        self.rebuild_projection(projection)
        return True

    def write_weights(self, projection: Projection) -> None:
        """Write the weights of ``projection`` into its ``Synapses`` (connectivity as built)."""
        flat = self._flat_index[projection.name]
        if flat.size:
            self._synapses[projection.name].w[:] = self._gathered_weights(projection)

    def load_weights(self, structure: Structure) -> list[str]:
        """Bring connectivity, weights and alive masks in line with ``structure``, not the spine state.

        What a training batch simulated in Brian2 needs (``learning.forward = "brian2"``): the
        weights of every projection are written into its ``Synapses`` (a projection whose
        connectivity changed is rebuilt under the same name, so no code is regenerated) and the
        ``alive`` masks into the neuron groups. The spine variables, which never enter the
        dynamics, wait for the next :meth:`load_structure` (the final evaluation starts with one).

        Returns
        -------
        list of str
            Names of the projections whose ``Synapses`` were rebuilt.
        """
        rebuilt = []
        for projection in structure.projections:
            if np.array_equal(self._built_exists[projection.name], projection.exists):
                self.write_weights(projection)
            else:
                self.rebuild_projection(projection)
                rebuilt.append(projection.name)
        for population in structure.populations[1:]:
            self.set_alive(population.name, population.alive)
        return rebuilt

    def _per_neuron(self, population: str, values: np.ndarray) -> np.ndarray:
        """Per-unit values (one per channel of a convolutional population) spread to its neurons."""
        values = np.asarray(values)
        positions = self._positions[population]
        if positions > 1 and values.shape == (self._sizes[population] // positions,):
            return np.repeat(values, positions)
        return values

    def set_alive(self, population: str, alive: np.ndarray) -> None:
        """Silence (False) or keep (True) the neurons (or channels) of ``population``."""
        self._groups[population].alive[:] = self._per_neuron(population, np.asarray(alive, dtype=bool))

    def set_shared(self, population: str, **values: float) -> None:
        """Set shared per-layer variables (e.g. ``pruning_rate``, ``trophic_pressure``)."""
        group = self._groups[population]
        for name, value in values.items():
            setattr(group, name, value)

    def set_importance(self, population: str, importance: np.ndarray) -> None:
        """Importance per neuron (or per channel, copied to its neurons)."""
        self._groups[population].importance[:] = self._per_neuron(population, importance)

    def load_structure(self, structure: Structure) -> list[str]:
        """Bring weights, spine state and alive masks in line with ``structure``.

        Returns the names of the projections whose ``Synapses`` were rebuilt.
        """
        rebuilt = [p.name for p in structure.projections if self.update_projection(p)]
        for population in structure.populations[1:]:
            self.set_alive(population.name, population.alive)
        return rebuilt

    # ------------------------------------------------------------------ simulation
    def _clear_monitors(self) -> None:
        """Forget what the monitors recorded in earlier runs (bounded memory over long runs)."""
        for monitor in self._spike_monitors.values():
            # SpikeMonitor.resize leaves the spike counter N to its template: reset it too.
            monitor.variables["N"].set_value(0)
            monitor.resize(0)
        for monitor in self._potential_monitors.values():
            monitor.resize(0)

    def _input_spikes(self, samples, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Checked input spikes of ``samples`` as ``(channel, absolute step)`` arrays.

        Sample ``b`` occupies the steps ``[start + b*T, start + (b+1)*T)``.
        """
        steps_per_sample = self._window_steps
        indices, steps = [], []
        analog = [isinstance(s, np.ndarray) and s.ndim == 1 and np.issubdtype(s.dtype, np.floating)
                  for s in samples]
        if any(analog) and not self.params.direct_input:
            raise ValueError(
                "present: got intensity vectors (direct encoding) for a network whose input is spikes; "
                "build it with NetworkParameters(direct_input=True) (data.encoding = \"direct\")"
            )
        for b, (channels, sample_steps) in enumerate(samples):
            channels = np.asarray(channels, dtype=np.int64)
            sample_steps = np.asarray(sample_steps, dtype=np.int64)
            if channels.shape != sample_steps.shape:
                raise ValueError(
                    f"present: sample {b} has {channels.size} channels but {sample_steps.size} steps"
                )
            if channels.size and (channels.min() < 0 or channels.max() >= self.params.n_input):
                raise ValueError(
                    f"present: sample {b} has channel indices outside [0, {self.params.n_input})"
                )
            if sample_steps.size and (sample_steps.min() < 0 or sample_steps.max() >= steps_per_sample):
                raise ValueError(
                    f"present: sample {b} has time steps outside [0, {steps_per_sample})"
                )
            indices.append(channels)
            steps.append(start + b * steps_per_sample + sample_steps)
        return np.concatenate(indices), np.concatenate(steps)

    def _intensities(self, samples) -> np.ndarray:
        """Checked direct-input samples as an array (B, n_input) of float64."""
        n_input = self.params.n_input
        for b, sample in enumerate(samples):
            if not (isinstance(sample, np.ndarray) and sample.ndim == 1 and np.issubdtype(sample.dtype, np.floating)):
                raise ValueError(
                    f"present: sample {b} is not an intensity vector; this network's input is direct "
                    "(analog): each sample must be a 1-D float array of n_input intensities"
                )
            if sample.shape != (n_input,):
                raise ValueError(f"present: sample {b} has {sample.size} intensities, expected {n_input}")
            if not np.all(np.isfinite(sample)):
                raise ValueError(f"present: sample {b} has intensities that are NaN or infinite")
        return np.stack(samples).astype(np.float64)

    def _direct_input_events(self, values: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        """``(channel, absolute step)`` of the input events of direct input: non-zero channels, every step."""
        steps_per_sample = self._window_steps
        sample, channel = np.nonzero(values)
        offsets = np.arange(steps_per_sample, dtype=np.int64)
        steps = (start + sample[:, None].astype(np.int64) * steps_per_sample + offsets[None, :]).ravel()
        indices = np.repeat(channel.astype(np.int64), steps_per_sample)
        order = np.argsort(steps * self.params.n_input + indices, kind="stable")
        return indices[order], steps[order]

    def _set_direct_input(self, values: np.ndarray, start: int) -> None:
        """Hand the intensities of the batch starting at step ``start`` to the input group."""
        group = self._groups["input"]
        group.namespace["direct_input"] = self._intensity_table(values)
        group.presentation_start = start * self._dt

    def _run(self, duration_steps: int) -> None:
        """``Network.run`` for ``duration_steps`` steps; an early stop is an interrupt."""
        t_before = float(self.network.t / second)
        self.network.run(duration_steps * self._dt, namespace={})
        completed = int(round((float(self.network.t / second) - t_before) / float(self._dt / second)))
        if completed < duration_steps:  # Brian2 stopped early (Network.stop, a time limit, Ctrl-C)
            raise KeyboardInterrupt(
                f"Brian2 stopped the run after {completed} of {duration_steps} time steps; "
                "nothing of this batch is used"
            )

    def _recording(self, start: int, n_samples: int, indices: np.ndarray, steps: np.ndarray) -> Recording:
        """What the monitors hold about the ``n_samples`` samples presented from step ``start``."""
        steps_per_sample = self._window_steps
        dt_seconds = float(self._dt / second)
        end = start + n_samples * steps_per_sample
        spikes = {}
        for name, monitor in self._spike_monitors.items():
            absolute = np.rint(np.asarray(monitor.t_[:]) / dt_seconds).astype(np.int64)
            neuron = np.asarray(monitor.i[:], dtype=np.int64)
            keep = (absolute >= start) & (absolute < end)
            relative = absolute[keep] - start
            spikes[name] = (relative // steps_per_sample, relative % steps_per_sample, neuron[keep])
        keep = (steps >= start) & (steps < end)
        in_sample = steps[keep] - start
        spikes["input"] = (in_sample // steps_per_sample, in_sample % steps_per_sample, indices[keep])
        potentials = {}
        for name, monitor in self._potential_monitors.items():
            values = np.asarray(monitor.v[:])[:, : n_samples * steps_per_sample]  # (N, B*T)
            potentials[name] = values.T.reshape(n_samples, steps_per_sample, -1).transpose(1, 0, 2)
        return Recording(n_samples, steps_per_sample, spikes, potentials, dict(self._sizes))

    def retire(self) -> None:
        """Declare that this process is done with the runtime network, simulated or not.

        A run whose Brian2 evaluation runs on the C++ standalone device builds this runtime network
        (the structural scheduler keeps it the network of record) and may never simulate it. When
        its objects are then garbage collected, Brian2 warns that each "was never included in a
        network" (``unused_brian_object``), although they are in :attr:`network`. This records their
        network the way ``Network.before_run`` does, so the warning is not printed for them; objects
        that did run are unchanged. Call it when the network will not be used again.
        """
        for obj in self.network.objects:
            if getattr(obj, "_network", None) is None:
                obj._network = self.network.id

    def present(self, samples) -> Recording:
        """Present a batch of samples in one ``run()`` and return what the monitors recorded.

        Parameters
        ----------
        samples : sequence of (channels, steps), or of intensity vectors
            Per sample, input spikes as integer arrays: channel index in ``[0, n_input)`` and time
            step in ``[0, n_steps)``, at most one spike per channel and step (see
            :func:`sdsnn_bio.data.encoding.events_to_spikes`). With direct input
            (``params.direct_input``): a 1-D float array of ``n_input`` intensities per sample; the
            recording's ``"input"`` spikes are then its events (non-zero channels, every step).
        """
        samples = list(samples)
        n_samples = len(samples)
        if n_samples == 0:
            raise ValueError("present: expected at least one sample, got an empty batch")
        start = self._steps_done
        if self.params.direct_input:
            values = self._intensities(samples)
            self._set_direct_input(values, start)
            indices, steps = self._direct_input_events(values, start)
        else:
            indices, steps = self._input_spikes(samples, start)
            self._groups["input"].set_spikes(indices, steps * self._dt)
        self._clear_monitors()
        duration_steps = n_samples * self._window_steps
        self._run(duration_steps)
        self._steps_done += duration_steps
        return self._recording(start, n_samples, indices, steps)

    def present_standalone(self, samples, *, n_samples: int, n_spikes: int, directory: str | Path) -> Recording:
        """Present ``samples`` in one run of the network compiled by Brian2's C++ standalone device.

        The network must have been built under the ``cpp_standalone`` device (see
        :mod:`sdsnn_bio.model.standalone`, which calls this method) and never run. The simulation
        lasts ``n_samples`` windows (the samples, then empty windows) and the input holds exactly
        ``n_spikes`` spikes (those of the samples, then spikes placed after the end of the run,
        which are never emitted), so that batches of equal ``n_samples`` and ``n_spikes`` generate
        identical C++ code and reuse the compiled binary.

        Parameters
        ----------
        samples : sequence of (channels, steps)
            As for :meth:`present`; at most ``n_samples`` samples with at most ``n_spikes`` spikes.
        n_samples : int
            Windows simulated (>= ``len(samples)``).
        n_spikes : int
            Input spikes handed to the ``SpikeGeneratorGroup`` (>= the spikes of ``samples``).
        directory : path
            The standalone project directory (code, compiled objects, static arrays, results).
        """
        samples = list(samples)
        if not samples:
            raise ValueError("present_standalone: expected at least one sample, got an empty batch")
        if n_samples < len(samples):
            raise ValueError(f"present_standalone: n_samples={n_samples} is below the {len(samples)} samples given")
        if self.params.direct_input:  # one TimedArray row per window, empty windows padded with zeros
            values = self._intensities(samples)
            padded = np.zeros((n_samples, self.params.n_input))
            padded[:len(samples)] = values
            self._set_direct_input(padded, 0)
            self._run_standalone(n_samples * self._window_steps, directory)
            return self._recording(0, len(samples), *self._direct_input_events(values, 0))
        indices, steps = self._input_spikes(samples, 0)
        if n_spikes < indices.size:
            raise ValueError(
                f"present_standalone: n_spikes={n_spikes} is below the {indices.size} input spikes given"
            )
        duration_steps = n_samples * self._window_steps
        padding = n_spikes - indices.size
        # One padding spike per step after the run (a SpikeGeneratorGroup refuses two spikes of one
        # channel in one step): never emitted, it only fixes the size of the arrays.
        all_indices = np.concatenate([indices, np.zeros(padding, dtype=np.int64)])
        all_steps = np.concatenate([steps, duration_steps + 1 + np.arange(padding, dtype=np.int64)])
        # Brian2's own order (by time, then channel), from one integer sort instead of its lexsort
        # of float times (seconds for millions of spikes).
        order = np.argsort(all_steps * self.params.n_input + all_indices, kind="stable")
        self._groups["input"].set_spikes(all_indices[order], all_steps[order] * self._dt, sorted=True)
        self._run_standalone(duration_steps, directory)
        return self._recording(0, len(samples), indices, steps)

    def _run_standalone(self, duration_steps: int, directory: str | Path) -> None:
        from brian2 import device

        self.network.run(duration_steps * self._dt, namespace={})
        device.build(directory=str(directory), compile=True, run=True, with_output=False)
        self._steps_done += duration_steps

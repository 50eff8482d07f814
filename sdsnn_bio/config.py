"""One experiment configuration (TOML), validated and echoed into every results file.

A configuration has six sections; every key has a default, so an empty file is a valid
configuration (the embedded dataset, dense training). Times are strings with a unit (``"20 ms"``,
``"1 ms"``, ``"500 us"``, ``"0.02 s"``); a bare number where a time is expected is an error.

.. code-block:: toml

    [data]
    dataset = "nmnist"       # a name in sdsnn_bio.data.registry.DATASETS; sets n_input and n_output
    root = ""                # dataset folder (N-MNIST: Train/, Test/ or Train.zip, Test.zip; "" = embedded)
    encoding = ""            # samples -> input ("" = the dataset's default; images: "poisson" or "direct")
    input_size = []          # event datasets: [width, height] to down-sample to ([] = dataset default)
    train_subset = 0         # class-balanced subset size (0 = all)
    test_subset = 0
    first_saccade = false
    validation_fraction = 0.0  # share of each class carved from the training split for validation
    validation_split = "fraction"  # or "folder": the dataset folder's own Validation/ split
    validation_subset = 0    # "folder": class-balanced subset of the folder's validation split (0 = all)

    [network]
    hidden_sizes = [800]
    layers = []              # or a convolutional network: ["15C3", "AP2", "40C3", "AP2", "300FC"]
                             # (sdsnn_bio.model.architecture; hidden_sizes then unused)
    dt = "1 ms"              # simulation step = input time bin
    n_steps = 300            # steps per sample
    tau_membrane = "20 ms"
    output_tau_membrane = "20 ms"
    v_threshold = 1.0
    v_reset = 0.0
    refractory = "0 ms"
    weight_init_gain = 4.0
    neuron_model = "lif"     # or "alif" (adaptive threshold; sdsnn_bio.model.neurons.NEURON_MODELS)
    tau_adaptation = "100 ms"  # alif: decay of the threshold adaptation
    adaptation_increment = 0.2  # alif: rise of the threshold per spike (normalised potential)
    synapse_model = "voltage_jump"  # or "current_exponential" (sdsnn_bio.model.synapses.SYNAPSE_MODELS)
    tau_synapse = "5 ms"     # current_exponential: decay of the synaptic current

    [learning]
    surrogate = "fast_sigmoid"
    loss = "rate_cross_entropy"
    learning_rate = 1e-3
    lr_schedule = "constant"  # or "cosine": from learning_rate down to min_learning_rate,
                              # or "step": x lr_decay_factor every lr_decay_epochs epochs
    min_learning_rate = 0.0
    lr_decay_factor = 0.1
    lr_decay_epochs = 40
    batch_size = 32
    epochs = 10
    augment_max_shift = 0    # random translation of training samples by up to N pixels (0 = off)
    augment_max_rotation = 0.0  # random rotation by up to N degrees (0 = off), after the shift
    augment_max_scale = 0.0  # random scaling by 1 +- up to N (0 = off)
    augment_elastic_alpha = 0.0  # elastic deformation (Simard et al. 2003): strength in pixels (0 = off)
    augment_elastic_sigma = 4.0  # ... and smoothness in pixels (sdsnn_bio.learning.augment)
    optimizer_reset = "restart"  # or "keep" (released code): Adam state of removed/regrown synapses
    masked_forward = true    # false (released code): pruned weights train densely between steps
    forward = "kernel"       # or "brian2": every training batch simulated by the Brian2 network,
                             # learning from its SpikeMonitors (same weights, slower; sdsnn_bio.forward)
    dtype = "float64"        # or "float32": the learner's weights, potentials, gradients and Adam
                             # state (Brian2 always simulates in float64); float64 stays the default
                             # until float32 matches its accuracy (docs/benchmarks.md)

    [development]            # SD-SNN structural development (off = dense training)
    enabled = false
    steps_per_epoch = 4.5    # development steps per epoch of training (any dataset size)
    # ... every field of DevelopmentParameters and Schedule (see sdsnn_bio.development)

    [simulation]
    codegen_target = "auto"  # Brian2 target for the network of record
    evaluation_batch = 100   # samples per Brian2 run() during evaluation (runtime device)
    evaluation_device = "auto"  # final test evaluation: "cpp_standalone" (Brian2's C++ standalone
                                # device: the same network compiled into one program, several
                                # times faster), "runtime", or "auto" (cpp_standalone unless
                                # codegen_target = "numpy", which compiles nothing)
    standalone_batch = 5000  # samples per run of the compiled program (cpp_standalone); recorded
                             # at once, so it counts in the memory estimate (the kernel's check beside
                             # it runs in pieces of evaluation_batch)

    [run]
    seed = 0
    output_dir = "runs/default"
    baseline = true          # with development: also train the dense baseline (same seed)

    [figures]                # what `sdsnn-bio plot` draws (its options override these)
    spine_projection = ""    # projection of the spine-dynamics figure ("" = the first whose
                             # tracked spine ranges changed, input -> hidden first)
    spine_synapses = []      # positions among its tracked synapses ([] = those whose range changed)
    spine_monitor = ""       # or draw the synapses of this [[monitor]] (any you choose by condition)

    [[monitor]]              # optional, repeatable: a development monitor of the SD-SNN model
    source = "input_to_hidden_1"          # a projection (synaptic variables) or a population
    variables = ["w", "spine_range_upper"]
    condition = "i < 10"                  # optional Brian2-style condition (default: all)
    name = "first_inputs"                 # optional (default "<source>_monitor")
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brian2 import Quantity, ms, second, us

from .forward import FORWARD_PASSES

__all__ = ["ConfigError", "ExperimentConfig", "load_config", "parse_time", "format_time", "json_values"]


def json_values(echo):
    """``echo`` as it reads back from a JSON file (tuples become lists): the form every echo is compared in.

    A configuration echo written into ``result.json``, ``point.json`` or a checkpoint comes back with
    lists; a live one compares equal to it only in this form.
    """
    return json.loads(json.dumps(echo))


#: Where the validation recordings come from (``data.validation_split``): carved from the training
#: split by ``data.validation_fraction``, or the dataset folder's own ``Validation/`` split (as
#: written by ``python -m sdsnn_bio.data emulate-idx``).
VALIDATION_SPLITS = ("fraction", "folder")


#: Memory per potential synapse (bytes): float64 weight, effective weight, gradient, Adam's two
#: moments, five float64 and four int32 spine arrays, the existence mask.
MEMORY_BYTES_PER_SYNAPSE = 8 * 5 + 8 * 5 + 4 * 4 + 1
#: Memory per training sample, time step and neuron kept for backpropagation through time (bytes).
MEMORY_BYTES_PER_NEURON_STEP = 8 * 6
#: Brian2 memory per synapse of a shared (convolutional) projection: w, kernel_index, i, j and
#: Brian2's own per-synapse indices (bytes; the spine state is per kernel element, not per synapse).
BRIAN2_BYTES_PER_SHARED_SYNAPSE = 8 + 4 + 4 * 4
#: Memory per sample of a C++ standalone evaluation batch (``simulation.standalone_batch``), unit
#: (input channel or neuron) and second of simulated time, in bytes: the program's monitors and input
#: arrays, and the batch's recording read back into Python. It scales with the spikes, hence with the
#: simulated time rather than the number of steps; measured on the main 2312-800-10 network (300 ms
#: per recording, 4.36 spikes per unit and second, about 188 bytes per spike; docs/benchmarks.md).
MEMORY_BYTES_PER_STANDALONE_UNIT_SECOND = 820


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (None where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


class ConfigError(ValueError):
    """An invalid configuration: the message names the field, what was expected and what came."""


_TIME = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*?\s*(s|second|ms|msecond|us|usecond|µs)\s*$")
_UNITS = {"s": second, "second": second, "ms": ms, "msecond": ms, "us": us, "usecond": us, "µs": us}


def parse_time(field_name: str, value: Any) -> Quantity:
    """``"20 ms"`` → ``20*ms``; anything without a time unit is a :class:`ConfigError`."""
    if isinstance(value, Quantity):
        return value
    if not isinstance(value, str):
        raise ConfigError(
            f"{field_name}: expected a time with a unit such as \"20 ms\", got {value!r}"
        )
    match = _TIME.match(value)
    if not match:
        raise ConfigError(
            f"{field_name}: expected a time with a unit (s, ms or us) such as \"20 ms\", got {value!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_time(value: Quantity) -> str:
    """Inverse of :func:`parse_time` (milliseconds)."""
    return f"{float(value / ms):g} ms"


# ---------------------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class DataConfig:
    dataset: str = "nmnist"
    root: str = ""
    encoding: str = ""
    input_size: tuple = ()
    train_subset: int = 0
    test_subset: int = 0
    first_saccade: bool = False
    cache_dir: str = ""
    validation_fraction: float = 0.0  # stratified share of the training split held out (0 = none)
    validation_split: str = "fraction"  # "fraction" (carved from training) or "folder" (Validation/)
    validation_subset: int = 0  # with "folder": class-balanced subset of the folder's validation split


@dataclass(frozen=True)
class NetworkConfig:
    hidden_sizes: tuple = (800,)
    layers: tuple = ()  # a layer description (model.architecture); () = fully connected hidden_sizes
    dt: str = "1 ms"
    n_steps: int = 300
    tau_membrane: str = "20 ms"
    output_tau_membrane: str = "20 ms"
    v_threshold: float = 1.0
    v_reset: float = 0.0
    refractory: str = "0 ms"
    weight_init_gain: float = 4.0
    neuron_model: str = "lif"  # a name in sdsnn_bio.model.neurons.NEURON_MODELS
    tau_adaptation: str = "100 ms"  # alif
    adaptation_increment: float = 0.2  # alif
    synapse_model: str = "voltage_jump"  # a name in sdsnn_bio.model.synapses.SYNAPSE_MODELS
    tau_synapse: str = "5 ms"  # current_exponential


@dataclass(frozen=True)
class LearningConfig:
    surrogate: str = "fast_sigmoid"
    surrogate_scale: float = 0.0  # 0: the surrogate's default
    loss: str = "rate_cross_entropy"
    logit_scale: float = 10.0
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"  # "constant" or "cosine" (over all training batches)
    min_learning_rate: float = 0.0  # where the cosine schedule ends
    lr_decay_factor: float = 0.1  # "step": the rate is multiplied by it ...
    lr_decay_epochs: int = 40  # ... every lr_decay_epochs epochs (released: x0.1 every 40)
    batch_size: int = 32
    epochs: int = 10
    threads: int = 0  # 0: the cores available
    augment_max_shift: int = 0  # pixels; random translation of training samples (0 = off)
    augment_max_rotation: float = 0.0  # degrees; random rotation of training samples (0 = off)
    augment_max_scale: float = 0.0  # fraction; random scaling by 1 +- up to this (0 = off)
    augment_elastic_alpha: float = 0.0  # pixels; elastic deformation's strength (0 = off)
    augment_elastic_sigma: float = 4.0  # pixels; elastic deformation's smoothness
    optimizer_reset: str = "restart"  # Adam state of removed/regrown synapses: "restart" or "keep"
    masked_forward: bool = True  # false (released): pruned synapses and neurons take part in training
    forward: str = "kernel"  # "kernel" or "brian2": what simulates the training batches (sdsnn_bio.forward)
    dtype: str = "float64"  # the learner's floating-point type: "float64" or "float32"


@dataclass(frozen=True)
class SimulationConfig:
    codegen_target: str = "auto"
    cache_dir: str = ""
    evaluation_batch: int = 100
    evaluation_device: str = "auto"
    standalone_batch: int = 5000

    def device_in_force(self) -> str:
        """The Brian2 device of the final evaluation: ``"cpp_standalone"`` or ``"runtime"``.

        ``"auto"`` means ``"cpp_standalone"``, unless ``codegen_target = "numpy"`` asks that
        nothing be compiled.
        """
        if self.evaluation_device == "auto":
            return "runtime" if self.codegen_target == "numpy" else "cpp_standalone"
        return self.evaluation_device


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0
    output_dir: str = "runs/default"
    baseline: bool = True
    checkpoint_every_batches: int = 0  # 0: at the end of every epoch only


@dataclass(frozen=True)
class FiguresConfig:
    spine_projection: str = ""  # "": the first projection whose tracked spine ranges changed
    spine_synapses: tuple = ()  # positions among the tracked synapses; (): those whose range changed
    spine_monitor: str = ""  # name of a [[monitor]] recording w and the spine range, drawn instead


#: Configuration keys holding a time, written as a string with a unit ("20 ms").
_TIME_FIELDS = {
    ("network", "dt"), ("network", "tau_membrane"), ("network", "output_tau_membrane"),
    ("network", "refractory"), ("network", "tau_adaptation"), ("network", "tau_synapse"),
}

#: Keys of ``[network]`` that choose a neuron or synapse model, and their defaults' names.
_MODEL_CHOICES = {"neuron_model": "lif", "synapse_model": "voltage_jump"}
#: Keys of ``[network]`` shared by every neuron model (not passed by name to the model class).
_MEMBRANE_KEYS = {"tau_membrane", "v_threshold", "v_reset", "refractory"}

_SECTIONS = {
    "data": DataConfig,
    "network": NetworkConfig,
    "learning": LearningConfig,
    "simulation": SimulationConfig,
    "run": RunConfig,
    "figures": FiguresConfig,
}


def _model_fields(cls) -> set[str]:
    """Constants (dataclass fields, not class variables) of a neuron or synapse model class."""
    return {f.name for f in dataclasses.fields(cls)}


#: Every key of ``[network]``.
_NETWORK_KEYS = frozenset(f.name for f in dataclasses.fields(NetworkConfig))


#: Keys of ``[development]`` that were replaced, with what to write instead.
_RENAMED_DEVELOPMENT_KEYS = {
    "interval_batches": (
        "no longer exists: development is timed in epochs of training so that a configuration "
        "gives the same developmental timeline on any dataset size; write "
        "development.steps_per_epoch = (training batches per epoch) / interval_batches instead "
        "(the embedded dataset's 1438 samples in batches of 32 are 45 batches per epoch: "
        "interval_batches = 10 is steps_per_epoch = 4.5)"
    ),
}


#: Keys of a ``[[monitor]]`` table -> whether it is required.
_MONITOR_KEYS = {"source": True, "variables": True, "condition": False, "name": False}


def _check_monitors(raw: Any) -> tuple:
    """Check the ``[[monitor]]`` tables.

    ``[[monitor]]`` tables as a tuple of plain dicts (types only: the names are checked against
    the network when the run starts, by :class:`~sdsnn_bio.development.DevelopmentMonitor`).
    """
    if isinstance(raw, dict):
        raise ConfigError("monitor: write each development monitor as a [[monitor]] table (an array "
                          "of tables), not [monitor]")
    if not isinstance(raw, list):
        raise ConfigError(f"monitor: expected [[monitor]] tables, got {raw!r}")
    monitors = []
    for k, table in enumerate(raw):
        where = f"monitor[{k}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table with keys {sorted(_MONITOR_KEYS)}, got {table!r}")
        unknown = set(table) - set(_MONITOR_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; expected keys: {sorted(_MONITOR_KEYS)}")
        missing = [key for key, required in _MONITOR_KEYS.items() if required and key not in table]
        if missing:
            raise ConfigError(f"{where}: missing key(s) {missing} (e.g. source = \"input_to_hidden_1\", "
                              "variables = [\"w\", \"spine_range_upper\"])")
        variables = table["variables"]
        if isinstance(variables, str):
            variables = [variables]
        if not isinstance(variables, list) or not variables or not all(isinstance(v, str) for v in variables):
            raise ConfigError(f"{where}.variables: expected a list of variable names, got {table['variables']!r}")
        for key in ("source", "condition", "name"):
            if key in table and (not isinstance(table[key], str) or not table[key]):
                raise ConfigError(f"{where}.{key}: expected a non-empty string, got {table[key]!r}")
        monitors.append({**table, "variables": list(variables)})
    return tuple(monitors)


def _development_fields() -> dict[str, Any]:
    """Keys accepted in ``[development]``: ``enabled``, the Schedule's and DevelopmentParameters'."""
    from .development import DevelopmentParameters, Schedule

    fields = {"enabled": False}
    for cls in (Schedule, DevelopmentParameters):
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                fields[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                fields[f.name] = f.default_factory()  # type: ignore[misc]
            else:
                fields[f.name] = None
    return fields


def _check_type(name: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return tuple(value)
    return value


_OWNER_FIELD = re.compile(r"\b[A-Z][A-Za-z]*Parameters\.(\w+)|\bSchedule\.(\w+)")


@contextlib.contextmanager
def _config_field(section: str, renames: dict | None = None):
    """Re-raise a parameter object's ``ValueError`` as a :class:`ConfigError` naming the config key.

    ``NeuronParameters.tau_membrane: expected ...`` becomes ``network.tau_membrane: expected ...``
    (``renames`` maps a parameter field to its configuration key where the two differ).
    """
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        renames = renames or {}

        def key(match: re.Match) -> str:
            name = match.group(1) or match.group(2)
            return f"{section}.{renames.get(name, name)}"

        message, count = _OWNER_FIELD.subn(key, str(err), count=1)
        raise ConfigError(message if count else f"{section}: {message}") from None


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment configuration (see the module docstring for the keys)."""

    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    development: dict = field(default_factory=dict)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    run: RunConfig = field(default_factory=RunConfig)
    figures: FiguresConfig = field(default_factory=FiguresConfig)
    monitors: tuple = ()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "ExperimentConfig":
        """Validate a nested mapping (as read from TOML)."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a table of sections, got {type(raw).__name__}")
        unknown = set(raw) - set(_SECTIONS) - {"development", "monitor"}
        if unknown:
            raise ConfigError(
                f"{source}: unknown section(s) {sorted(unknown)}; expected "
                f"{sorted(list(_SECTIONS) + ['development', 'monitor'])}"
            )
        sections = {}
        for name, section_cls in _SECTIONS.items():
            values = raw.get(name, {})
            if not isinstance(values, dict):
                raise ConfigError(f"{name}: expected a table, got {values!r}")
            if name == "network" and values.get("layers") and "hidden_sizes" in values:
                raise ConfigError(
                    "network: write either layers (a convolutional network, whose layer sizes follow "
                    "from the input shape) or hidden_sizes (fully-connected layers), not both; got "
                    f"layers = {list(values['layers'])} and hidden_sizes = {values['hidden_sizes']}"
                )
            defaults = {f.name: getattr(section_cls(), f.name) for f in dataclasses.fields(section_cls)}
            unknown = set(values) - set(defaults)
            if unknown:
                raise ConfigError(
                    f"{name}: unknown key(s) {sorted(unknown)}; expected keys: {sorted(defaults)}"
                )
            checked = {}
            for key, value in values.items():
                if (name, key) in _TIME_FIELDS:
                    parse_time(f"{name}.{key}", value)  # a time's error says "time with a unit"
                checked[key] = _check_type(f"{name}.{key}", defaults[key], value)
            sections[name] = section_cls(**checked)
        development = raw.get("development", {})
        if not isinstance(development, dict):
            raise ConfigError(f"development: expected a table, got {development!r}")
        defaults = _development_fields()
        for key in sorted(set(development) & set(_RENAMED_DEVELOPMENT_KEYS)):
            raise ConfigError(f"development.{key}: {_RENAMED_DEVELOPMENT_KEYS[key]}")
        unknown = set(development) - set(defaults)
        if unknown:
            raise ConfigError(
                f"development: unknown key(s) {sorted(unknown)}; expected keys: {sorted(defaults)}"
            )
        checked = {}
        for key, value in development.items():
            default = defaults[key]
            checked[key] = value if default is None else _check_type(f"development.{key}", default, value)
        config = cls(development=checked, monitors=_check_monitors(raw.get("monitor", [])), **sections)
        config.validate()
        return config

    def validate(self) -> None:
        """Build every parameter object once, so that any invalid value fails here, named."""
        self.network_parameters()
        self.learning_parameters()
        self.learning_rate_schedule(1)
        self.development_parameters()
        self.schedule()  # warm-ups derived from K, checked against the development end
        if self.learning.batch_size < 1:
            raise ConfigError(f"learning.batch_size: expected an integer >= 1, got {self.learning.batch_size}")
        if self.learning.epochs < 1:
            raise ConfigError(f"learning.epochs: expected an integer >= 1, got {self.learning.epochs}")
        if self.learning.threads < 0:
            raise ConfigError(f"learning.threads: expected an integer >= 0, got {self.learning.threads}")
        if self.simulation.codegen_target not in ("auto", "numpy", "cython"):
            raise ConfigError(
                "simulation.codegen_target: expected 'auto', 'numpy' or 'cython', "
                f"got {self.simulation.codegen_target!r}"
            )
        if self.simulation.evaluation_batch < 1:
            raise ConfigError(
                f"simulation.evaluation_batch: expected an integer >= 1, got {self.simulation.evaluation_batch}"
            )
        if self.simulation.evaluation_device not in ("auto", "cpp_standalone", "runtime"):
            raise ConfigError(
                "simulation.evaluation_device: expected 'auto', 'cpp_standalone' or 'runtime', "
                f"got {self.simulation.evaluation_device!r}"
            )
        if self.simulation.standalone_batch < 1:
            raise ConfigError(
                f"simulation.standalone_batch: expected an integer >= 1, got {self.simulation.standalone_batch}"
            )
        if self.data.validation_split not in VALIDATION_SPLITS:
            raise ConfigError(
                f"data.validation_split: expected one of {list(VALIDATION_SPLITS)}, "
                f"got {self.data.validation_split!r}"
            )
        if self.data.validation_split == "folder" and "validation" not in self.dataset().splits:
            raise ConfigError(
                f"data.validation_split: \"folder\" needs a dataset folder with its own validation split; "
                f"{self.data.dataset} has {list(self.dataset().splits)} (use \"fraction\")"
            )
        if self.data.validation_split == "folder" and self.data.validation_fraction:
            raise ConfigError(
                "data.validation_fraction: must be 0 with data.validation_split = \"folder\" "
                f"(the folder's Validation/ split is the validation set), got {self.data.validation_fraction}"
            )
        if not 0 <= self.data.validation_fraction < 1:
            raise ConfigError(
                f"data.validation_fraction: expected a number in [0, 1), got {self.data.validation_fraction}"
            )
        if self.learning.forward not in FORWARD_PASSES:
            raise ConfigError(
                f"learning.forward: expected one of {list(FORWARD_PASSES)}, got {self.learning.forward!r}"
            )
        if self.learning.forward == "brian2" and not self.learning.masked_forward:
            raise ConfigError(
                "learning.forward: 'brian2' needs learning.masked_forward = true (the Brian2 network holds "
                "only the existing synapses and silences pruned neurons); use forward = \"kernel\" with "
                "masked_forward = false"
            )
        if self.learning.augment_max_shift < 0:
            raise ConfigError(
                f"learning.augment_max_shift: expected an integer >= 0 (pixels), got {self.learning.augment_max_shift}"
            )
        self.distortion()
        self.input_shape()
        try:
            self.dataset().encoding(self.data.encoding)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if self.data.first_saccade and "first_saccade" not in self.dataset().options:
            raise ConfigError(
                f"data.first_saccade: applies to N-MNIST-like recordings only, not to {self.data.dataset!r}"
            )
        for name in ("train_subset", "test_subset", "validation_subset"):
            if getattr(self.data, name) < 0:
                raise ConfigError(f"data.{name}: expected an integer >= 0 (0 = all), got {getattr(self.data, name)}")
        if self.data.validation_subset and self.data.validation_split != "folder":
            raise ConfigError(
                f"data.validation_subset: applies to the folder's own validation split "
                f"(data.validation_split = \"folder\"), got {self.data.validation_subset} with "
                f"data.validation_split = {self.data.validation_split!r} (size a carved split with "
                "data.validation_fraction)"
            )
        if self.run.checkpoint_every_batches < 0:
            raise ConfigError(
                f"run.checkpoint_every_batches: expected an integer >= 0, got {self.run.checkpoint_every_batches}"
            )
        self._check_memory()
        self._check_development_timeline()
        for k in self.figures.spine_synapses:
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise ConfigError(
                    f"figures.spine_synapses: expected positions (integers >= 0) among the tracked "
                    f"synapses, got {list(self.figures.spine_synapses)!r}"
                )
        monitors = [m.get("name") or f"{m['source']}_monitor" for m in self.monitors]  # DevelopmentMonitor's
        if self.figures.spine_monitor and self.figures.spine_monitor not in monitors:
            raise ConfigError(
                f"figures.spine_monitor: expected the name of a [[monitor]] of this configuration "
                f"({monitors or 'none defined'}), got {self.figures.spine_monitor!r}"
            )

    def _check_development_timeline(self) -> None:
        """Refuse an SD-SNN run whose neuron pruning would start after its last development step.

        The run has ``floor(learning.epochs * development.steps_per_epoch)`` development steps
        (whatever the dataset size, see :class:`~sdsnn_bio.development.Schedule`); pruning starts at
        step ``pruning_warmup_steps`` (0-based; default 2K). A run that never reaches it would be
        reported as "SD-SNN" with nothing removed.
        """
        if not self.development_enabled:
            return
        development = self.development_parameters()
        schedule = self.schedule()
        if not schedule.pruning:
            return
        batches = max(1, math.ceil(schedule.steps_per_epoch))  # any count >= steps_per_epoch gives
        total = schedule.development_steps(self.learning.epochs * batches, batches)  # the same steps
        start = schedule.pruning_warmup_steps
        if start < total:
            return
        epochs_needed = max(1, math.floor((start + 1) / schedule.steps_per_epoch))
        while schedule.development_steps(epochs_needed * batches, batches) <= start:
            epochs_needed += 1
        derived = "" if "pruning_warmup_steps" in self.development else (
            f" (2K with development.consecutive_steps = {development.consecutive_steps}"
            + (f", after {development.initialisation_steps} initialisation steps"
               if development.initialisation_steps else "") + ")")
        raise ConfigError(
            f"development.pruning_warmup_steps: neuron pruning would start at development step {start}"
            f"{derived}, but {self.learning.epochs} epochs x {schedule.steps_per_epoch:g} steps per "
            f"epoch give only {total} steps (0 to {total - 1}): the SD-SNN model would prune nothing. "
            f"Train for at least {epochs_needed} epochs (learning.epochs), or lower "
            "development.consecutive_steps or development.pruning_warmup_steps, or raise "
            "development.steps_per_epoch (or set development.pruning = false on purpose)"
        )

    # ------------------------------------------------------------------ memory
    def memory_estimate(self) -> dict[str, int]:
        """Bytes the run needs at its peak, by part (the dataset itself not included).

        * ``synapses``: per potential synapse, the weight, mask, spine state, Adam moments, gradient
          and effective weight (:data:`MEMORY_BYTES_PER_SYNAPSE`), doubled for the checkpoint's
          and the Brian2 network's copies of the existing synapses;
        * ``training``: BPTT keeps, per training sample, time step and neuron (hidden and output),
          :data:`MEMORY_BYTES_PER_NEURON_STEP` bytes (potential, spikes, surrogate derivative,
          input current and their gradients);
        * ``evaluation``: per sample of ``simulation.evaluation_batch``, step and unit (input channel
          or neuron), 8 bytes: the runtime device's Brian2 batch, and the kernel's forward pass
          (validation, and the check beside the final evaluation, which runs in pieces of this size
          under both devices);
        * ``standalone`` (only when the final evaluation runs on the C++ standalone device,
          :meth:`SimulationConfig.device_in_force`): per sample of ``simulation.standalone_batch``
          (at most ``data.test_subset``), unit and second of simulated time,
          :data:`MEMORY_BYTES_PER_STANDALONE_UNIT_SECOND` bytes: the program's monitors and the
          batch's recording read back into Python.
        """
        params = self.network_parameters()
        sizes = params.population_sizes
        architecture = params.architecture()
        if architecture is None:
            synapses = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
            brian2_synapses = 0
        else:  # shared kernels: the arrays hold parameters; Brian2 holds every synapse's w and index
            synapses, brian2_synapses, source = 0, 0, params.n_input
            for spec in architecture.specs:
                if spec.geometry is None:
                    synapses += source * spec.size
                else:
                    rows, cols = spec.geometry.parameter_shape
                    synapses += rows * cols
                    brian2_synapses += spec.geometry.n_synapses
                source = spec.size
        neurons = sum(sizes[1:])
        unit_steps = params.n_steps * (neurons + params.n_input)  # per sample
        unit_seconds = params.n_steps * params.dt_seconds * (neurons + params.n_input)
        parts = {
            "synapses": 2 * MEMORY_BYTES_PER_SYNAPSE * synapses + BRIAN2_BYTES_PER_SHARED_SYNAPSE * brian2_synapses,
            "training": MEMORY_BYTES_PER_NEURON_STEP * self.learning.batch_size * params.n_steps * neurons,
            "evaluation": 8 * self.simulation.evaluation_batch * unit_steps,
        }
        if self.simulation.device_in_force() == "cpp_standalone":
            batch = self.simulation.standalone_batch  # a run never holds more than the test split
            if self.data.test_subset:
                batch = min(batch, self.data.test_subset)
            parts["standalone"] = int(MEMORY_BYTES_PER_STANDALONE_UNIT_SECOND * batch * unit_seconds)
        return parts

    def _check_memory(self) -> None:
        available = physical_memory()
        if available is None:
            return
        parts = self.memory_estimate()
        needed = sum(parts.values())
        if needed <= available:
            return
        gib = 2.0 ** 30
        detail = ", ".join(f"{name} {value / gib:.3g} GiB" for name, value in parts.items())
        raise ConfigError(
            (f"network.layers={list(self.network.layers)}" if self.network.layers else
             f"network.hidden_sizes={list(self.network.hidden_sizes)}")
            + f", network.n_steps={self.network.n_steps} "
            f"(learning.batch_size={self.learning.batch_size}, simulation.evaluation_batch="
            f"{self.simulation.evaluation_batch}"
            + (f", simulation.standalone_batch={self.simulation.standalone_batch}" if "standalone" in parts else "")
            + f"): the run would need about {needed / gib:.3g} GiB of "
            f"memory ({detail}), "
            f"more than this machine's {available / gib:.3g} GiB; use a smaller network or fewer "
            "time steps per sample" + (" (or a smaller simulation.standalone_batch: samples per run of "
                                       "the C++ standalone evaluation)" if "standalone" in parts else "")
        )

    # ------------------------------------------------------------------ parameter objects
    def _model_constants(self, registry: dict, choice: str, skip=frozenset()) -> dict:
        """Constants of the model named by ``network.<choice>``, from the ``[network]`` keys of their names.

        Times are parsed; a constant of another registered model that is set away from its default is
        refused (it would silently do nothing).
        """
        net = self.network
        name = getattr(net, choice)
        if name not in registry:
            raise ConfigError(f"network.{choice}: expected one of {sorted(registry)}, got {name!r}")
        defaults = NetworkConfig()
        used = _model_fields(registry[name]) - set(skip)
        for other, cls in registry.items():
            for key in sorted(_model_fields(cls) - used - set(skip)):
                if key in _NETWORK_KEYS and getattr(net, key) != getattr(defaults, key):
                    raise ConfigError(
                        f"network.{key}: applies to network.{choice} = {other!r} only, but "
                        f"network.{choice} = {name!r}; remove the key or choose that model"
                    )
        constants = {}
        for key in sorted(used):
            value = getattr(net, key)
            constants[key] = parse_time(f"network.{key}", value) if ("network", key) in _TIME_FIELDS else value
        return constants

    def network_parameters(self):
        """The :class:`~sdsnn_bio.model.NetworkParameters` of ``[network]`` (sizes, neurons, time step)."""
        from .model import NEURON_MODELS, SYNAPSE_MODELS, NetworkParameters

        net = self.network
        neuron_constants = self._model_constants(NEURON_MODELS, "neuron_model", skip=_MEMBRANE_KEYS)
        synapse_constants = self._model_constants(SYNAPSE_MODELS, "synapse_model")
        neuron_cls = NEURON_MODELS[net.neuron_model]

        def neuron(tau_key: str):
            with _config_field("network", {"tau_membrane": tau_key}):
                return neuron_cls(
                    tau_membrane=parse_time(f"network.{tau_key}", getattr(net, tau_key)),
                    v_threshold=net.v_threshold, v_reset=net.v_reset,
                    refractory=parse_time("network.refractory", net.refractory),
                    **neuron_constants,
                )

        hidden, output = neuron("tau_membrane"), neuron("output_tau_membrane")
        with _config_field("network"):
            synapse = SYNAPSE_MODELS[net.synapse_model](**synapse_constants)
        descriptor = self.dataset()
        n_input = math.prod(self.input_shape())
        try:
            direct_input = descriptor.encoding(self.data.encoding).analog
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if net.layers:
            width, height, channels = self.input_shape()
            try:
                return NetworkParameters.from_layers(
                    list(net.layers), (channels, height, width), descriptor.n_classes,
                    dt=parse_time("network.dt", net.dt), n_steps=net.n_steps, hidden=hidden,
                    output=output, weight_init_gain=net.weight_init_gain, synapse=synapse,
                    direct_input=direct_input,
                )
            except ValueError as err:
                message = str(err)
                if not message.startswith("network."):
                    message = f"network: {message}"
                raise ConfigError(f"{message} (input {width}x{height}x{channels} of "
                                  f"data.dataset = {descriptor.name!r})") from None
        with _config_field("network"):
            return NetworkParameters(
                n_input=n_input, n_output=descriptor.n_classes,
                hidden_sizes=tuple(net.hidden_sizes), dt=parse_time("network.dt", net.dt),
                n_steps=net.n_steps, hidden=hidden, output=output,
                weight_init_gain=net.weight_init_gain, synapse=synapse, direct_input=direct_input,
            )

    def dataset(self):
        """The :class:`~sdsnn_bio.data.registry.DatasetDescriptor` named by ``data.dataset``."""
        from .data.registry import get_dataset

        try:
            return get_dataset(self.data.dataset)
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def distortion(self):
        """The :class:`~sdsnn_bio.learning.augment.Distortion` of ``learning.augment_*``."""
        from .learning.augment import Distortion

        learn = self.learning
        try:
            return Distortion(learn.augment_max_rotation, learn.augment_max_scale,
                              learn.augment_elastic_alpha, learn.augment_elastic_sigma)
        except ValueError as err:  # messages name the learning.augment_* key
            raise ConfigError(str(err)) from None

    def input_shape(self) -> tuple[int, int, int]:
        """``(width, height, channels)`` of the network input (channel ``(c*H + y)*W + x``)."""
        try:
            return self.dataset().input_shape(self.data.input_size)
        except ValueError as err:  # messages name data.input_size already
            raise ConfigError(str(err)) from None

    def learning_parameters(self):
        """The :class:`~sdsnn_bio.learning.LearningParameters` of ``[learning]``."""
        from .learning.learner import LearningParameters

        learn = self.learning
        try:
            return LearningParameters(
                surrogate=learn.surrogate,
                surrogate_scale=learn.surrogate_scale or None,
                loss=learn.loss, logit_scale=learn.logit_scale, learning_rate=learn.learning_rate,
                optimizer_reset=learn.optimizer_reset, masked_forward=learn.masked_forward,
                dtype=learn.dtype,
            )
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def learning_rate_schedule(self, total_batches: int):
        """The learning-rate schedule of the run.

        The :class:`~sdsnn_bio.learning.optim.LearningRateSchedule` of a run of ``total_batches``
        (``learning.epochs`` times the batches per epoch).
        """
        from .learning.optim import LearningRateSchedule

        learn = self.learning
        try:
            return LearningRateSchedule(kind=learn.lr_schedule, base=learn.learning_rate,
                                        minimum=learn.min_learning_rate, total_batches=total_batches,
                                        decay_factor=learn.lr_decay_factor, decay_epochs=learn.lr_decay_epochs,
                                        batches_per_epoch=max(total_batches // max(learn.epochs, 1), 1))
        except ValueError as err:
            message = str(err)
            if message.startswith(("lr_schedule", "learning_rate", "min_learning_rate", "lr_decay")):
                message = "learning." + message
            raise ConfigError(message) from None

    def _development_subset(self, cls) -> dict:
        names = {f.name for f in dataclasses.fields(cls)}
        return {k: v for k, v in self.development.items() if k in names}

    def development_parameters(self):
        """The :class:`~sdsnn_bio.development.DevelopmentParameters` of ``[development]``."""
        from .development import DevelopmentParameters

        with _config_field("development"):
            return DevelopmentParameters(**self._development_subset(DevelopmentParameters))

    def schedule(self):
        """The development schedule in force.

        The :class:`~sdsnn_bio.development.Schedule` in force: warm-ups left unset are derived
        from ``development.consecutive_steps`` (and the released semantics' initialisation step).
        """
        from .development import Schedule

        development = self.development_parameters()
        with _config_field("development"):
            return Schedule(**self._development_subset(Schedule)).resolve(
                development.consecutive_steps, development.initialisation_steps)

    @property
    def development_enabled(self) -> bool:
        """Whether the run develops its structure (``development.enabled``)."""
        return bool(self.development.get("enabled", False))

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict:
        """JSON/TOML-ready nested mapping (the echo written into every results file)."""
        out = {name: dataclasses.asdict(getattr(self, name)) for name in _SECTIONS}
        out["network"]["hidden_sizes"] = list(self.network.hidden_sizes)
        if self.network.layers:
            out["network"]["layers"] = list(self.network.layers)
            del out["network"]["hidden_sizes"]  # follows from the layers
        else:  # absent when unused: echoes of fully-connected configurations are unchanged
            del out["network"]["layers"]
        # The model keys appear when they matter (another model than LIF with voltage jumps, and its
        # constants): echoes of default-model configurations are unchanged.
        for key in self._unused_model_keys():
            del out["network"][key]
        out["data"]["input_size"] = list(self.data.input_size)
        if self.learning.dtype == "float64":  # the default: echoes written before the key are unchanged
            del out["learning"]["dtype"]
        out["development"] = dict(self.development)
        out["figures"]["spine_synapses"] = list(self.figures.spine_synapses)
        if self.monitors:  # absent when empty: echoes of configurations without monitors are unchanged
            out["monitor"] = [dict(m) for m in self.monitors]
        return json_values(out)  # equal to its own reloaded copy when a run or a sweep resumes

    def _unused_model_keys(self) -> list[str]:
        """``[network]`` keys of the model choice left at its default and of models not in force."""
        from .model import NEURON_MODELS, SYNAPSE_MODELS

        net = self.network
        used = set(_MEMBRANE_KEYS)
        for registry, choice in ((NEURON_MODELS, net.neuron_model), (SYNAPSE_MODELS, net.synapse_model)):
            if choice in registry:  # (an unknown name is refused by validate)
                used |= _model_fields(registry[choice])
        constants = set()
        for registry in (NEURON_MODELS, SYNAPSE_MODELS):
            for cls in registry.values():
                constants |= _model_fields(cls) & _NETWORK_KEYS
        unused = [key for key, default in _MODEL_CHOICES.items() if getattr(net, key) == default]
        return unused + sorted(constants - used - _MEMBRANE_KEYS)

    def to_json(self) -> str:
        """The :meth:`to_dict` echo as indented JSON with sorted keys."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def in_force(self) -> tuple[dict, list[str]]:
        """The full configuration in force: every key with its default, warm-ups resolved.

        :meth:`to_dict` echoes ``[development]`` as written; here every field of the
        :class:`~sdsnn_bio.development.Schedule` and of the
        :class:`~sdsnn_bio.development.DevelopmentParameters` appears, and the warm-ups left
        unset are replaced by the values derived from K (``consecutive_steps``).

        Returns
        -------
        config : dict
            Nested mapping like :meth:`to_dict`.
        derived : list of str
            ``development.<key>`` of each value derived rather than written or defaulted.
        """
        out = self.to_dict()
        out["network"] = {**dataclasses.asdict(self.network), **out["network"]}  # every model key
        out["learning"] = dataclasses.asdict(self.learning)  # learning.dtype even at its default
        development = {**_development_fields(), **self.development}
        schedule = self.schedule()
        derived = []
        for name in ("constraint_warmup_steps", "pruning_warmup_steps", "regeneration_warmup_steps"):
            if development.get(name) is None:
                development[name] = getattr(schedule, name)
                derived.append(f"development.{name}")
        out["development"] = {key: list(v) if isinstance(v, tuple) else v for key, v in development.items()}
        return out, derived

    def with_overrides(self, assignments) -> "ExperimentConfig":
        """Apply ``"section.key=value"`` assignments (values parsed as TOML scalars/lists)."""
        raw = copy.deepcopy(self.to_dict())
        for assignment in assignments:
            if "=" not in assignment or "." not in assignment.split("=", 1)[0]:
                raise ConfigError(f"--set: expected section.key=value, got {assignment!r}")
            key, text = assignment.split("=", 1)
            section, name = key.strip().split(".", 1)
            if section == "monitor":
                raise ConfigError(f"--set {assignment!r}: [[monitor]] tables cannot be set from the "
                                  "command line; write them in the configuration file")
            raw.setdefault(section, {})[name] = parse_value(text)
        return ExperimentConfig.from_dict(raw, source="--set")

    def replace(self, section: str, **changes) -> "ExperimentConfig":
        """Copy with ``changes`` applied to ``section``, validated again."""
        raw = self.to_dict()
        raw[section].update(changes)
        return ExperimentConfig.from_dict(raw)


def parse_value(text: str) -> Any:
    """A TOML value (``10``, ``1e-3``, ``true``, ``[800]``, ``"20 ms"``); bare words are strings."""
    try:
        return tomllib.loads(f"value = {text.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def load_config(path: str | Path | None) -> ExperimentConfig:
    """Read and validate a TOML configuration; ``None`` gives the defaults."""
    if path is None:
        return ExperimentConfig.from_dict({}, source="defaults")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"configuration file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    try:
        return ExperimentConfig.from_dict(raw, source=str(path))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None

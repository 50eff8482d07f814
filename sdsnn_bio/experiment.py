"""Experiments: train a network (dense, or with SD-SNN development), evaluate it in Brian2, save.

One call, :func:`run_experiment`, does what ``sdsnn-bio run`` does:

1. load the data (``data.dataset``: the embedded offline dataset, or a local folder) and encode it
   as spikes on the time grid (:mod:`sdsnn_bio.data.registry`); with
   ``data.validation_fraction > 0`` a class-stratified validation split, fixed by the seed, is
   carved from the training split (:func:`sdsnn_bio.data.validation_split`);
2. build the initial dense structure from the seed, the NumPy learner and the Brian2 network;
3. train for ``learning.epochs`` epochs; each batch's forward pass is simulated by the NumPy kernel
   (spike-for-spike equal to the Brian2 network; the default) or, with ``learning.forward =
   "brian2"``, by the Brian2 network itself, the learner reconstructing potentials and traces from
   its ``SpikeMonitor`` recordings (:mod:`sdsnn_bio.forward`); with development enabled, the
   structural scheduler applies SD-SNN's rules ``development.steps_per_epoch`` times per epoch
   (``sync="lazy"``: the Brian2 synapses are rebuilt by the ``load_structure`` or ``load_weights``
   that starts the next Brian2 run, not at every step); with
   ``learning.augment_max_shift > 0`` every training sample is translated by a random shift drawn
   from ``(seed, epoch, batch)``, and with ``learning.augment_max_rotation``, ``augment_max_scale``
   or ``augment_elastic_alpha`` it is then distorted by a random warp drawn the same way
   (:mod:`sdsnn_bio.learning.augment`); after every epoch the
   validation accuracy is measured with the kernel (no augmentation);
4. evaluate the FINAL network on the held-out test split *in Brian2* (the simulator of record),
   counting synaptic operations from its spike monitors; the kernel's predictions are reported
   beside it as a consistency check;
5. write ``results.json`` (configuration echoed, per-epoch training history, development log,
   final test accuracy, connectivity, neurons kept, SOPs and energy).

The protocol: settings are chosen on VALIDATION accuracy (``validation.accuracy_per_epoch``,
``final_validation_accuracy``); the TEST split is evaluated once, after the final epoch, in Brian2
(``final_test_accuracy``). Every reported number is the final epoch's, never the best epoch's
(choosing the best epoch on the test split would be model selection on the test set).

With development enabled and ``run.baseline = true`` the dense baseline with the same seed and
architecture is trained first, so both results come from one command. Checkpoints (everything a
run needs, RNG states included) are written atomically after every epoch; ``resume=True`` continues
an interrupted run and ends with the same result as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import ConfigError, ExperimentConfig, json_values
from .energy import energy_summary, synaptic_operations
from .runfolder import (
    CHECKPOINT,
    MODEL_RESULT,
    MONITORS,
    RASTERS,
    RESULTS,
    STRUCTURE,
    load_model_result,
    load_rasters,
    read_checkpoint,
    remove_checkpoint,
    save_rasters,
    save_structure,
    write_checkpoint,
    write_json,
)
from .structure import Structure

__all__ = [
    "PreparedData",
    "TrainingDiverged",
    "prepare_data",
    "run_experiment",
    "train_model",
    "evaluate",
    "kernel_accuracy",
    "atomic_write_json",
]

logger = logging.getLogger(__name__)

#: Deprecated alias of :data:`sdsnn_bio.runfolder.MODEL_RESULT` (the run-folder names live there).
RESULT = MODEL_RESULT


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN/inf; the last good checkpoint is kept."""


def atomic_write_json(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically (see :func:`sdsnn_bio.runfolder.write_json`)."""
    return write_json(path, payload)


# ----------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class PreparedData:
    """Binned input spikes and labels of both splits (the validation split is carved at training).

    ``train`` and ``test`` are sequences of ``(channels, steps)``: :class:`~sdsnn_bio.data.BinnedSamples`
    from :func:`prepare_data` (compact), or plain lists; with direct encoding, sequences of intensity
    vectors (:class:`~sdsnn_bio.data.analog.IntensitySamples`).
    """

    train: list
    train_labels: np.ndarray
    test: list
    test_labels: np.ndarray
    description: dict
    #: The dataset folder's own validation split (``data.validation_split = "folder"``), else empty.
    validation: list = field(default_factory=list)
    validation_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def prepare_data(config: ExperimentConfig) -> PreparedData:
    """Load both splits of ``data.dataset`` and encode every sample as spikes on the time grid."""
    from .data.registry import encode_split

    params = config.network_parameters()
    descriptor = config.dataset()
    root = config.data.root or None
    options = dict(first_saccade=config.data.first_saccade, cache_dir=config.data.cache_dir or None)
    splits, sources = {}, []
    wanted = [("train", config.data.train_subset), ("test", config.data.test_subset)]
    if config.data.validation_split == "folder":
        wanted.append(("validation", config.data.validation_subset))
    for split, subset in wanted:
        samples, labels, source = encode_split(
            descriptor, split, root=root, subset=subset or None, seed=config.run.seed,
            encoding=config.data.encoding, input_size=config.data.input_size, dt=params.dt,
            n_steps=params.n_steps, options=options,
        )
        splits[split] = (samples, labels)
        sources.append(source)
    train, test = splits["train"], splits["test"]
    description = {
        "dataset": descriptor.name,
        "source": str(root) if root else sources[0],
        "encoding": descriptor.encoding(config.data.encoding).name,
        "input_shape": list(config.input_shape()),
        "train_samples": len(train[0]),
        "test_samples": len(test[0]),
        "validation_samples_from_folder": len(splits["validation"][0]) if "validation" in splits else 0,
        "mean_input_spikes_per_sample": float(train[0].spike_counts().mean()) if len(train[0]) else 0.0,
    }
    if "validation" in splits:
        return PreparedData(train[0], train[1], test[0], test[1], description,
                            validation=splits["validation"][0], validation_labels=splits["validation"][1])
    return PreparedData(train[0], train[1], test[0], test[1], description)


def data_fingerprint(samples, labels) -> dict:
    """Count and SHA-256 of one split's binned spikes and labels (stored in every checkpoint).

    Parameters
    ----------
    samples : list of (channels, steps), or of intensity vectors (direct encoding)
    labels : array_like of int
    """
    import hashlib

    digest = hashlib.sha256()
    digest.update(np.asarray(labels, dtype=np.int64).tobytes())
    for sample in samples:
        if isinstance(sample, np.ndarray) and sample.ndim == 1:  # direct encoding: intensities
            digest.update(np.int64(sample.size).tobytes())
            digest.update(np.asarray(sample, dtype=np.float64).tobytes())
            continue
        channels, steps = sample
        channels = np.asarray(channels, dtype=np.int64)
        digest.update(np.int64(channels.size).tobytes())
        digest.update(channels.tobytes())
        digest.update(np.asarray(steps, dtype=np.int64).tobytes())
    return {"recordings": len(samples), "sha256": digest.hexdigest()}


def _data_change(saved: dict, current: dict) -> str | None:
    """A sentence naming how the data differs from the checkpoint's, or None when it does not."""
    changes = []
    for split in ("train", "validation", "test"):
        before, now = saved.get(split) or {}, current[split]
        if before.get("sha256") == now["sha256"]:
            continue
        if before.get("recordings") != now["recordings"]:
            changes.append(f"the {split} split had {before.get('recordings')} recordings, now {now['recordings']}")
        else:
            changes.append(f"the {split} split's recordings or labels changed "
                           f"(same count, {now['recordings']}; other content)")
    return "; ".join(changes) or None


# ----------------------------------------------------------------------------------------- evaluation
@contextlib.contextmanager
def _frozen_gc():
    """Brian2's ``Network.run`` calls ``gc.collect()``; freezing the existing heap makes it cheap."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def evaluate(network, structure: Structure, learner, samples, labels, batch_size: int,
             progress: bool = False, stop=None, checkpoint: Path | None = None, *,
             standalone_directory: str | Path | None = None, kernel_batch: int | None = None,
             raster_samples: int = 0) -> dict:
    """Accuracy of the network of record (Brian2) on ``samples``, with SOPs and energy.

    The NumPy kernel's predictions are computed too, in float64 like Brian2 (a float32 learner's
    weights exactly, :meth:`~sdsnn_bio.learning.learner.Learner.evaluator`), and their agreement with
    Brian2 is reported (``kernel_brian2_agreement``); a float32 learner's own predictions are
    counted beside them (``learner_dtype_accuracy``, ``learner_dtype_brian2_agreement``).
    With a :class:`~sdsnn_bio.interrupt.StopRequest` ``stop``, a Ctrl-C ends the evaluation after
    its current Brian2 batch with :class:`~sdsnn_bio.interrupt.RunInterrupted` (naming
    ``checkpoint``), never inside a Brian2 ``run()``.

    With ``standalone_directory`` the network is simulated by Brian2's C++ standalone device
    (:func:`sdsnn_bio.model.standalone.present_standalone`, ``batch_size`` samples per run of the
    compiled program, compiled in that directory); otherwise by ``network`` (the runtime device).
    A Ctrl-C also reaches the running C++ program: its batch is then discarded.

    The kernel's check runs on ``kernel_batch`` samples at a time (default ``batch_size``): its
    forward pass holds every layer's potentials, 8 bytes per sample, step and neuron, which for the
    standalone device's large batches would be far more than the Brian2 recording itself.

    With ``raster_samples`` > 0 the result also holds ``"rasters"``: the Brian2 spikes of the first
    ``raster_samples`` samples as :func:`raster_arrays` labelled ``"after"`` (not JSON: the caller
    saves them), taken from the evaluation's own recordings, so no extra simulation is run.
    """
    from .interrupt import RunInterrupted
    from .learning.learner import InputBatch
    from .learning.loss import predict
    from .model.standalone import present_standalone
    from .progress import progress_bar

    params = network.params
    kernel_batch = batch_size if kernel_batch is None else kernel_batch
    names = tuple(p.name for p in structure.populations)
    # The kernel of record simulates in Brian2's float64 (a float32 learner's weights exactly), so
    # the agreement checks the simulation, not float32 rounding; the learner's own type is counted
    # beside it.
    reference = learner.evaluator("float64")
    own_predictions = [] if reference is not learner else None
    raster_parts = []  # the raster samples' spikes, per batch (not the batch: it may be thousands)
    if standalone_directory is None:
        network.load_structure(structure)
        recordings = (network.present(samples[start:start + batch_size])
                      for start in range(0, len(samples), batch_size))
    else:
        recordings = present_standalone(structure, params, samples, batch_size=batch_size,
                                        directory=standalone_directory)
    brian_predictions, kernel_predictions = [], []
    counts = {name: [] for name in names}
    with _frozen_gc(), progress_bar(len(samples), "evaluate (Brian2)", progress) as bar:
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            try:
                recording = next(recordings)
            except RuntimeError as err:  # the C++ program was stopped by the same Ctrl-C
                if stop is not None and stop.requested:
                    raise RunInterrupted(
                        f"interrupted during the Brian2 evaluation ({start} of {len(samples)} samples); "
                        "training is finished and checkpointed, --resume only evaluates",
                        checkpoint,
                    ) from err
                raise
            if start < raster_samples:
                raster_parts.append(raster_arrays([(start, recording)], "after", raster_samples))
            out_counts = recording.spike_counts("output")
            mean_potential = recording.potentials["output"].mean(axis=0)
            brian_predictions.append(predict(out_counts, mean_potential))
            for name in names:
                counts[name].append(recording.spike_counts(name))
            for k in range(0, len(chunk), kernel_batch):
                batch = InputBatch.from_samples(chunk[k:k + kernel_batch], params.n_steps, params.n_input)
                kernel_predictions.append(reference.evaluate(batch))
                if own_predictions is not None:
                    own_predictions.append(learner.evaluate(batch))
            bar.update(len(chunk))
            if stop is not None and stop.requested and start + len(chunk) < len(samples):
                raise RunInterrupted(
                    f"interrupted during the Brian2 evaluation ({start + len(chunk)} of {len(samples)} "
                    "samples); training is finished and checkpointed, --resume only evaluates",
                    checkpoint,
                )
    brian_predictions = np.concatenate(brian_predictions)
    kernel_predictions = np.concatenate(kernel_predictions)
    counts = {name: np.concatenate(c) for name, c in counts.items()}
    labels = np.asarray(labels)
    sops = synaptic_operations(counts, structure)
    learner_type = {"learner_dtype": learner.dtype.name}
    if own_predictions is not None:
        own_predictions = np.concatenate(own_predictions)
        learner_type["learner_dtype_accuracy"] = float(np.mean(own_predictions == labels))
        learner_type["learner_dtype_brian2_agreement"] = float(np.mean(own_predictions == brian_predictions))
    rasters = {"rasters": {key: np.concatenate([part[key] for part in raster_parts]) if key.startswith("after/")
                           else raster_parts[0][key] for key in raster_parts[0]}} if raster_parts else {}
    return {
        "accuracy": float(np.mean(brian_predictions == labels)),
        "kernel_accuracy": float(np.mean(kernel_predictions == labels)),
        "kernel_brian2_agreement": float(np.mean(kernel_predictions == brian_predictions)),
        "kernel_dtype": "float64",
        **learner_type,
        "n_samples": int(labels.size),
        "brian2_device": "runtime" if standalone_directory is None else "cpp_standalone",
        "spikes_per_sample": {name: float(c.sum(axis=1).mean()) for name, c in counts.items()},
        "energy": energy_summary(sops, structure, params.n_steps),
        "predictions": brian_predictions.tolist(),
        **rasters,
    }


RASTER_SAMPLES = 3


def raster_arrays(recordings, label: str, n_samples: int) -> dict[str, np.ndarray]:
    """Spikes of the first ``n_samples`` samples as arrays ``<label>/<population>/{sample,step,neuron}``.

    Parameters
    ----------
    recordings : sequence of (int, Recording)
        Consecutive Brian2 recordings, each with the index of its first sample.
    label : str
        ``"before"`` or ``"after"`` (training).
    n_samples : int
        Samples kept, counted from sample 0.
    """
    recordings = list(recordings)
    first = recordings[0][1]
    arrays = {"n_steps": np.array(first.n_steps)}
    for name, size in first.sizes.items():
        arrays[f"sizes/{name}"] = np.array(size)
        parts = []
        for offset, recording in recordings:
            sample, step, neuron = recording.spikes[name]
            keep = sample + offset < n_samples
            parts.append((sample[keep] + offset, step[keep], neuron[keep]))
        for position, key in enumerate(("sample", "step", "neuron")):
            arrays[f"{label}/{name}/{key}"] = np.concatenate([part[position] for part in parts]).astype(np.int32)
    return arrays


def record_rasters(network, structure: Structure, samples, label: str, *,
                   standalone_directory: str | Path | None = None) -> dict[str, np.ndarray]:
    """Brian2 spikes of a few samples, as :func:`raster_arrays`.

    Simulated by ``network`` (runtime device), or with ``standalone_directory`` by Brian2's C++
    standalone program compiled there (the evaluation's project), so that a run whose evaluation
    is standalone never compiles the runtime network's code.
    """
    from .model.standalone import present_standalone

    samples = list(samples)
    if standalone_directory is None:
        network.load_structure(structure)
        recording = network.present(samples)
    else:
        (recording,) = present_standalone(structure, network.params, samples, batch_size=len(samples),
                                          directory=standalone_directory)
    return raster_arrays([(0, recording)], label, len(samples))


def structure_report(structure: Structure) -> dict:
    """Connectivity per projection, neurons kept per layer, and totals removed.

    For a convolutional projection, ``synapses`` counts kernel elements (parameters, what
    development removes); a pruned channel counts all its neurons as removed.
    """
    summary = structure.summary()
    total = sum(p.exists.size for p in structure.projections)
    existing = sum(p.n_synapses for p in structure.projections)
    hidden = structure.hidden_populations
    hidden_total = sum(p.size for p in hidden)
    hidden_alive = sum(p.n_neurons_alive for p in hidden)
    summary["synapses_removed_fraction"] = 1.0 - existing / total
    summary["hidden_neurons_removed_fraction"] = 1.0 - hidden_alive / hidden_total
    return summary


# ----------------------------------------------------------------------------------------- training
def _restore_checkpoint(checkpoint_path: Path, config_echo: dict, fingerprint: dict, structure: Structure,
                        learner) -> dict:
    """Load a checkpoint into ``structure`` and ``learner``; returns its ``meta``.

    Refuses a checkpoint of another configuration or of other data, naming what changed.
    """
    checkpoint = read_checkpoint(checkpoint_path)
    meta = checkpoint.meta
    changed = configuration_changes(meta["config"], config_echo)
    if changed:
        raise ValueError(
            f"{checkpoint_path}: the checkpoint was written with another configuration "
            f"(changed: {', '.join(changed)}); use a new run.output_dir or the same configuration to resume"
        )
    change = _data_change(meta.get("data_fingerprint") or {}, fingerprint)
    if change:
        raise ValueError(
            f"{checkpoint_path}: the data changed since this checkpoint was written ({change}); "
            "resume with the same data, or start again with --overwrite"
        )
    restored = Structure.from_arrays(checkpoint.arrays, source=str(checkpoint_path))
    learner.optimizer.load_state_arrays(checkpoint.arrays)
    for mine, theirs in zip(structure.populations, restored.populations):
        mine.alive[:] = theirs.alive
    for mine, theirs in zip(structure.projections, restored.projections):
        mine.weight[:] = theirs.weight
        mine.exists[:] = theirs.exists
        mine.spine = theirs.spine
    return meta


#: Configuration keys that say where files go, not what is computed: a run may resume with others.
PLACEMENT_KEYS = frozenset({("simulation", "cache_dir"), ("data", "cache_dir"), ("run", "output_dir")})

#: Keys added after checkpoints were first written, with the value an echo without them implies
#: (a checkpoint written before ``learning.forward`` existed was trained with the kernel).
ADDED_KEYS = {("learning", "forward"): "kernel"}


def configuration_changes(before: dict, after: dict) -> list[str]:
    """``section.key`` of every setting that differs between two configuration echoes.

    Keys that only place files (:data:`PLACEMENT_KEYS`: caches, the output folder) and the
    ``[figures]`` section (what plots draw) are ignored.
    A section that is a list (``[[monitor]]`` tables) is compared whole and named alone.
    """
    before, after = json_values(before), json_values(after)  # a file's echo has lists for tuples
    changes = []
    for section in (set(before) | set(after)) - {"figures"}:
        old, new = before.get(section), after.get(section)
        if not isinstance(old or {}, dict) or not isinstance(new or {}, dict):
            if old != new:
                changes.append(section)
            continue
        changes += [
            f"{section}.{key}" for key in set(old or {}) | set(new or {})
            if (section, key) not in PLACEMENT_KEYS
            and (old or {}).get(key, ADDED_KEYS.get((section, key)))
            != (new or {}).get(key, ADDED_KEYS.get((section, key)))
        ]
    return sorted(changes)


def same_configuration(before: dict, after: dict) -> bool:
    """Whether two configuration echoes compute the same run (see :func:`configuration_changes`)."""
    return not configuration_changes(before, after)


def _rng_state_json(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def _restore_rng(text: str) -> np.random.Generator:
    state = json.loads(text)
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng


def _check_finite(structure: Structure, where: str) -> None:
    for projection in structure.projections:
        if not np.all(np.isfinite(projection.weight)):
            raise TrainingDiverged(f"{where}: weights of {projection.name} are not finite")


def train_model(
    config: ExperimentConfig,
    data: PreparedData,
    directory: str | Path,
    *,
    development: bool,
    resume: bool = False,
    progress: bool = True,
    stop_after_batches: int | None = None,
    keep_checkpoint: bool = False,
    brian_cache_dir: str | Path | None = None,
    stop=None,
    epochs_after: int = 0,
) -> dict:
    """Train one model, evaluate it in Brian2 and write ``result.json`` into ``directory``.

    Parameters
    ----------
    config : ExperimentConfig
    data : PreparedData
    directory : path
        Holds ``checkpoint.npz`` and ``result.json`` of this model.
    development : bool
        Apply SD-SNN structural development (else dense training).
    resume : bool
        Continue from ``checkpoint.npz`` if present (its configuration must match).
    progress : bool
        Show progress bars.
    stop_after_batches : int, optional
        Stop (without a result) after this many training batches in total; a checkpoint is
        written first. Used to interrupt runs on purpose (tests of resume).
    keep_checkpoint : bool
        Keep ``checkpoint.npz`` (exact float64 state) after the model finished; by default it is
        removed once ``result.json`` is written.
    brian_cache_dir : path, optional
        Brian2 code cache for this process, overriding ``simulation.cache_dir`` (not stored).
    stop : StopRequest, optional
        When it is requested (Ctrl-C, see :mod:`sdsnn_bio.interrupt`), training stops after the
        current batch with a checkpoint and raises :class:`~sdsnn_bio.interrupt.RunInterrupted`.
    epochs_after : int
        Epochs of the models the run trains after this one (for the whole run's ETA).
    """
    from .data.analog import IntensitySamples
    from .data.binned import BinnedSamples
    from .data.split import validation_split
    from .development.monitor import save_monitors
    from .development.scheduler import StructuralScheduler
    from .forward import training_forward
    from .interrupt import RunInterrupted
    from .learning.augment import augment_batch
    from .learning.learner import InputBatch, Learner
    from .model import SpikingNetwork, configure_brian2, initial_structure
    from .progress import progress_bar

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint_path = directory / CHECKPOINT
    params = config.network_parameters()
    learning = config.learning
    distortion, sensor_size = config.distortion(), config.input_shape()
    seed = config.run.seed
    train_indices, validation_indices = validation_split(
        data.train_labels, config.data.validation_fraction, seed)
    all_train = data.train if isinstance(data.train, IntensitySamples) else BinnedSamples.from_spikes(
        data.train, params.n_steps, params.n_input)
    train_samples = all_train[train_indices]
    train_labels = np.asarray(data.train_labels)[train_indices]
    validation_samples = all_train[validation_indices]
    validation_labels = np.asarray(data.train_labels)[validation_indices]
    if len(data.validation):  # the folder's own Validation/ split (data.validation_split = "folder")
        validation_samples = data.validation
        validation_labels = np.asarray(data.validation_labels)
    fingerprint = {"train": data_fingerprint(data.train, data.train_labels),
                   "validation": data_fingerprint(validation_samples, validation_labels),
                   "test": data_fingerprint(data.test, data.test_labels)}
    configure_brian2(config.simulation.codegen_target,
                     brian_cache_dir or config.simulation.cache_dir or None)
    import brian2

    brian2.seed(seed)

    structure = initial_structure(params, np.random.default_rng(seed))
    learner = Learner(structure, params.layer_dynamics(), config.learning_parameters(),
                      n_threads=learning.threads or None)
    shuffle_rng = np.random.default_rng([seed, 1])
    epoch, batch_in_epoch, global_batch = 0, 0, 0
    history: list[dict] = []
    development_log: list[dict] = []
    permutation = None
    scheduler_state = None
    epoch_totals = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
    config_echo = config.to_dict()

    if resume and checkpoint_path.is_file():
        meta = _restore_checkpoint(checkpoint_path, config_echo, fingerprint, structure, learner)
        epoch, batch_in_epoch, global_batch = meta["epoch"], meta["batch_in_epoch"], meta["global_batch"]
        history, development_log = meta["history"], meta["development_log"]
        permutation = None if meta["permutation"] is None else np.asarray(meta["permutation"])
        shuffle_rng = _restore_rng(meta["shuffle_rng"])
        scheduler_state = meta["scheduler_state"]
        epoch_totals = meta["epoch_totals"]
        logger.info("resumed %s at epoch %d, batch %d", directory, epoch + 1, batch_in_epoch)

    model = "sdsnn" if development else "dense"
    network = SpikingNetwork(structure, params)
    standalone = None  # the C++ standalone project of the evaluation (and of the rasters)
    if config.simulation.device_in_force() == "cpp_standalone":
        from .model.standalone import STANDALONE_SUBDIRECTORY, default_standalone_directory

        cache = brian_cache_dir or config.simulation.cache_dir
        standalone = Path(cache) / STANDALONE_SUBDIRECTORY if cache else default_standalone_directory()
    rasters_path = directory / RASTERS
    if not resume or not rasters_path.is_file():
        with _brian2_notice(config, standalone):
            try:
                before = record_rasters(network, structure, data.test[:RASTER_SAMPLES], "before",
                                        standalone_directory=standalone)
            except RuntimeError as err:  # the C++ program was stopped by the same Ctrl-C
                if stop is not None and stop.requested:
                    raise RunInterrupted("interrupted while Brian2 recorded the rasters before training; "
                                         "nothing was trained yet") from err
                raise
        save_rasters(rasters_path, before)
    scheduler = None
    if development:
        # The synapses are rebuilt by the next Brian2 run (a training batch's load_weights with
        # learning.forward = "brian2", else the load_structure that starts evaluate and record_rasters),
        # not at every development step.
        monitors = _development_monitors(config, directory / MONITORS if resume else None,
                                         0 if scheduler_state is None else scheduler_state["rules"]["step"])
        scheduler = StructuralScheduler(
            network, structure, config.schedule(), config.development_parameters(), learner,
            state=scheduler_state, sync="lazy", monitors=monitors,
        )

    def save(meta_epoch_totals) -> None:
        _check_finite(structure, f"{directory}")
        meta = {
            "config": config_echo, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
            "global_batch": global_batch, "history": history, "development_log": development_log,
            "permutation": None if permutation is None else permutation.tolist(),
            "shuffle_rng": _rng_state_json(shuffle_rng),
            "scheduler_state": None if scheduler is None else scheduler.state_dict(),
            "epoch_totals": meta_epoch_totals, "data_fingerprint": fingerprint,
        }
        if scheduler is not None and scheduler.monitors:
            # Before the checkpoint: a resumed run drops recordings made after its checkpoint.
            save_monitors(directory / MONITORS, scheduler.monitors)
        write_checkpoint(checkpoint_path, structure, learner.optimizer.state_arrays(), meta)

    forward = training_forward(learning.forward, learner, network, structure)
    n_train = len(train_samples)
    n_batches = math.ceil(n_train / learning.batch_size)
    if scheduler is not None:
        try:  # before any training: an epoch too short for steps_per_epoch fails at once
            scheduler.schedule.check_batches_per_epoch(n_batches)
        except ValueError as err:
            raise ConfigError(str(err).replace("Schedule.", "development.", 1)) from None
    learning_rate = config.learning_rate_schedule(learning.epochs * n_batches)
    every = config.run.checkpoint_every_batches
    started = time.perf_counter()
    session_seconds: list[float] = []  # per full epoch trained in this session (for the ETA)
    while epoch < learning.epochs:
        if permutation is None:
            permutation = shuffle_rng.permutation(n_train)
        tick = time.perf_counter()
        first_batch = batch_in_epoch
        development_from = len(development_log)
        with progress_bar(n_batches, f"{model} epoch {epoch + 1}/{learning.epochs}", progress,
                          initial=batch_in_epoch) as bar:
            while batch_in_epoch < n_batches:
                chosen = permutation[batch_in_epoch * learning.batch_size:(batch_in_epoch + 1) * learning.batch_size]
                samples = [train_samples[k] for k in chosen]
                samples = augment_batch(samples, seed, epoch, batch_in_epoch, learning.augment_max_shift,
                                        distortion, sensor_size)
                batch = InputBatch.from_samples(samples, params.n_steps, params.n_input)
                learner.optimizer.learning_rate = learning_rate.at(global_batch)
                try:
                    step = forward.train_step(batch, train_labels[chosen])
                except FloatingPointError as err:
                    raise TrainingDiverged(
                        f"{directory}: {err} at epoch {epoch + 1}, batch {batch_in_epoch + 1}; "
                        f"the last good checkpoint is kept at {checkpoint_path}"
                    ) from None
                epoch_totals["loss"] += step.loss * len(chosen)
                epoch_totals["correct"] += step.n_correct
                epoch_totals["seen"] += len(chosen)
                batch_in_epoch += 1
                global_batch += 1
                if scheduler is not None:
                    record = scheduler.after_batch(global_batch, n_batches)
                    if record is not None:
                        entry = {"batch": global_batch, "epoch": epoch + 1,
                                 "training_epochs": global_batch / n_batches, **record}
                        development_log.append(entry)
                        logger.debug("development step %s", _short_record(entry))
                bar.update(1)
                bar.set_postfix(loss=f"{step.loss:.3f}")
                if stop_after_batches is not None and global_batch >= stop_after_batches:
                    epoch_totals["seconds"] += time.perf_counter() - tick
                    save(epoch_totals)
                    logger.info("stopped on request after %d batches", global_batch)
                    return {"interrupted": True, "global_batch": global_batch}
                if stop is not None and stop.requested:
                    epoch_totals["seconds"] += time.perf_counter() - tick
                    save(epoch_totals)
                    raise RunInterrupted(
                        f"{model}: interrupted at epoch {epoch + 1}/{learning.epochs}, batch "
                        f"{batch_in_epoch}/{n_batches}; checkpoint written", checkpoint_path)
                if every and global_batch % every == 0 and batch_in_epoch < n_batches:
                    epoch_totals["seconds"] += time.perf_counter() - tick
                    tick = time.perf_counter()
                    save(epoch_totals)
        epoch_totals["seconds"] += time.perf_counter() - tick
        seen = max(epoch_totals["seen"], 1)
        validation_accuracy = None
        if validation_samples:
            validation_accuracy = kernel_accuracy(learner, validation_samples, validation_labels,
                                                  params.n_steps, params.n_input,
                                                  config.simulation.evaluation_batch)
        entry = {
            "epoch": epoch + 1,
            "train_loss": epoch_totals["loss"] / seen,
            "train_accuracy": epoch_totals["correct"] / seen,
            "validation_accuracy": validation_accuracy,
            "seconds": epoch_totals["seconds"],
            "samples_per_second": epoch_totals["seen"] / max(epoch_totals["seconds"], 1e-9),
            "learning_rate": learner.optimizer.learning_rate,
            **structure_report(structure),
        }
        history.append(entry)
        if first_batch == 0:
            session_seconds.append(entry["seconds"])
        epochs_left = learning.epochs - (epoch + 1) + epochs_after
        eta = float(np.mean(session_seconds)) * epochs_left if session_seconds else None
        logger.info("%s", epoch_line(model, entry, learning.epochs, eta))
        if scheduler is not None:
            logger.info("%s", development_summary(model, epoch + 1, learning.epochs,
                                                  development_log[development_from:], structure))
        epoch += 1
        batch_in_epoch = 0
        permutation = None
        epoch_totals = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        save(epoch_totals)

    training_seconds = time.perf_counter() - started
    logger.info("%s: evaluating the final network on %d test recordings in Brian2", model, len(data.test))
    with _brian2_notice(config, standalone):
        evaluation = evaluate(network, structure, learner, data.test, data.test_labels,
                              config.simulation.standalone_batch if standalone else
                              config.simulation.evaluation_batch, progress, stop, checkpoint_path,
                              standalone_directory=standalone,
                              kernel_batch=config.simulation.evaluation_batch,
                              raster_samples=min(RASTER_SAMPLES, len(data.test)))
    network.retire()  # never simulated in this process when the evaluation ran standalone
    save_structure(directory / STRUCTURE, structure)
    rasters = {key: values for key, values in load_rasters(rasters_path).items()
               if not key.startswith("after/")}
    rasters.update(evaluation.pop("rasters"))  # the evaluation's own recordings of the first samples
    save_rasters(rasters_path, rasters)
    validation_per_epoch = [entry.get("validation_accuracy") for entry in history]
    result = {
        "model": "sdsnn" if development else "dense",
        "seed": seed,
        "final_test_accuracy": evaluation["accuracy"],
        "final_validation_accuracy": validation_per_epoch[-1] if validation_samples else None,
        "validation": validation_report(config.data.validation_fraction, validation_labels,
                                        validation_per_epoch, n_train, config.data.validation_split),
        "test": {**evaluation, "protocol": TEST_PROTOCOL},
        "history": history,
        "development_log": development_log,
        "structure": structure_report(structure),
        "training_seconds_this_session": training_seconds,
        "tracked_synapses": None if scheduler is None else scheduler.state_dict()["tracked"],
        "config": config_echo,
    }
    if scheduler is not None and scheduler.monitors:
        save_monitors(directory / MONITORS, scheduler.monitors)
        result["monitors"] = {m.name: m.summary() for m in scheduler.monitors}
    write_json(directory / MODEL_RESULT, result)
    if not keep_checkpoint:
        remove_checkpoint(directory)
    logger.info("%s: final test accuracy %.4f (Brian2), kernel agreement %.4f%s",
                result["model"], evaluation["accuracy"], evaluation["kernel_brian2_agreement"],
                f" (the {learner.dtype.name} learner's own predictions: "
                f"{evaluation['learner_dtype_brian2_agreement']:.4f})"
                if "learner_dtype_brian2_agreement" in evaluation else "")
    return result


TEST_PROTOCOL = ("evaluated once, after the final epoch, on the held-out test split, in Brian2 "
                 "(the simulator of record); never used to choose settings or epochs")
VALIDATION_PROTOCOL = ("carved from the training split (stratified by class, fixed by run.seed, "
                       "never trained on); measured after every epoch with the NumPy kernel "
                       "(spike-for-spike equal to Brian2); the reported number is the final epoch's")


def kernel_accuracy(learner, samples, labels, n_steps: int, n_input: int, batch_size: int) -> float:
    """Accuracy of the NumPy kernel on ``samples`` (no learning, no augmentation).

    Parameters
    ----------
    learner : Learner
    samples : list of (channels, steps)
    labels : ndarray of int
    n_steps, n_input : int
        Time steps per sample and input channels.
    batch_size : int
        Samples simulated at once.
    """
    from .learning.learner import InputBatch

    labels = np.asarray(labels)
    correct = 0
    for start in range(0, len(samples), batch_size):
        batch = InputBatch.from_samples(samples[start:start + batch_size], n_steps, n_input)
        correct += int(np.sum(learner.evaluate(batch) == labels[start:start + batch_size]))
    return correct / max(len(samples), 1)


def validation_report(fraction: float, labels, accuracy_per_epoch, n_train: int,
                      source: str = "fraction") -> dict | None:
    """The ``validation`` record of a model's result (None without a validation split)."""
    if len(labels) == 0:
        return None
    return {
        "source": source,
        "fraction": fraction,
        "n_samples": int(len(labels)),
        "n_train_samples": int(n_train),
        "accuracy_per_epoch": list(accuracy_per_epoch),
        "final_epoch_accuracy": accuracy_per_epoch[-1],
        "protocol": VALIDATION_PROTOCOL,
    }


def _development_monitors(config: ExperimentConfig, saved: Path | None, step: int) -> list:
    """The configured ``[[monitor]]`` tables as monitors; when resuming, those saved, cut at ``step``."""
    from .development.monitor import DevelopmentMonitor, load_monitors

    monitors = [DevelopmentMonitor(m["source"], m["variables"], m.get("condition"), name=m.get("name"))
                for m in config.monitors]
    if saved is not None and saved.is_file() and step > 0:
        loaded = load_monitors(saved)
        monitors = [loaded[m.name].truncate(step) if m.name in loaded else m for m in monitors]
    return monitors


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1 h 2 min"``, ``125`` -> ``"2 min 5 s"``, ``42`` -> ``"42 s"``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def epoch_line(model: str, entry: dict, epochs: int, eta_seconds: float | None) -> str:
    """The one INFO line of an epoch: model, epoch i/N, loss, accuracies, speed, removed, ETA.

    ``eta_seconds`` is the time left for the training of the whole run (every model), from this
    session's mean epoch time; None when no full epoch was timed yet.
    """
    parts = [f"{model}: epoch {entry['epoch']}/{epochs}",
             f"train loss {entry['train_loss']:.4f}, accuracy {100 * entry['train_accuracy']:.2f}%"]
    if entry.get("validation_accuracy") is not None:
        parts.append(f"validation {100 * entry['validation_accuracy']:.2f}%")
    parts.append(f"{entry['samples_per_second']:.0f} samples/s")
    parts.append(f"{100 * entry['synapses_removed_fraction']:.1f}% synapses removed")
    if eta_seconds is not None:
        parts.append("run done" if eta_seconds <= 0 else
                     f"ETA {format_duration(eta_seconds)} (training, whole run)")
    return " | ".join(parts)


def development_summary(model: str, epoch: int, epochs: int, entries: list[dict], structure: Structure) -> str:
    """One INFO line summing an epoch's development steps (each step is logged at DEBUG)."""

    def total(key: str) -> int:
        return int(sum(sum((e.get(key) or {}).values()) for e in entries))

    hidden = structure.hidden_populations
    alive = ", ".join(f"{p.name} {p.n_alive}/{p.n_units}" + (" channels" if p.shape else "")
                      for p in hidden)
    text = (f"{model}: epoch {epoch}/{epochs} development: {len(entries)} steps, neurons pruned "
            f"{total('neurons_pruned')}, revived {total('neurons_revived')} (alive: {alive}), "
            f"synapses removed {total('synapses_removed')}, regrown {total('synapses_added')}")
    if entries:
        last = entries[-1]
        rates = last.get("pruning_rates") or {}
        if rates:
            text += ", pruning rate " + ", ".join(f"{k} {v:.3g}" for k, v in rates.items())
        if last.get("regeneration_percentile") is not None:
            text += f", regeneration percentile {last['regeneration_percentile']:.3g}"
    return text


@contextlib.contextmanager
def _brian2_notice(config: ExperimentConfig, standalone: Path | None = None):
    """Tell the user while Brian2 generates and compiles code (the first run of a network)."""
    import brian2

    target = brian2.prefs.codegen.target
    compiles = target != "numpy" or standalone is not None
    if standalone is not None:
        logger.info("Brian2: C++ standalone device, compiled in %s (the first build takes about a "
                    "minute; later builds recompile only what changed)", standalone)
    elif compiles:
        logger.info("Brian2: generating and compiling the network's code (%s target); the first "
                    "run of a network takes 1-2 minutes, later runs reuse the cache", target)
    tick = time.perf_counter()
    yield
    if compiles:
        logger.info("Brian2: done in %s", format_duration(time.perf_counter() - tick))


def _short_record(entry: dict) -> str:
    keys = ("batch", "development_step", "pruning_rates", "regeneration_percentile",
            "neurons_alive", "synapses")
    return json.dumps({k: entry[k] for k in keys if k in entry}, default=str)


def run_experiment(
    config: ExperimentConfig,
    *,
    output_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    data: PreparedData | None = None,
    keep_checkpoints: bool = False,
    overwrite: bool = False,
    brian_cache_dir: str | Path | None = None,
) -> dict:
    """Run the configured experiment and write ``results.json``; returns the results.

    With development enabled (and ``run.baseline``), the dense baseline is trained first with the
    same seed and architecture. Completed models are skipped when resuming. Checkpoints are removed
    after each model finished unless ``keep_checkpoints``.

    The run holds a lock on its folder (a second run into it is refused), refuses to start over an
    unfinished run unless ``resume`` or ``overwrite``, removes temporary files that killed writes
    left, and leaves no empty folder behind when it fails before writing anything.

    Parameters
    ----------
    brian_cache_dir : path, optional
        Brian2 code cache of this process (sweep workers), instead of ``simulation.cache_dir``;
        where code is cached is not part of the configuration, so resuming elsewhere works.
    """
    from .interrupt import stop_on_interrupt
    from .runfolder import (
        check_rerun,
        clear_run,
        hold_run_folder,
        prepare_output_folder,
        remove_if_empty,
        remove_orphaned_temporaries,
    )

    output_dir, created = prepare_output_folder(output_dir or config.run.output_dir)
    try:
        with hold_run_folder(output_dir):
            check_rerun(output_dir, resume=resume, overwrite=overwrite)
            if overwrite:
                for path in clear_run(output_dir):
                    logger.info("--overwrite: removed %s", path)
            for folder in [output_dir, *(d for d in output_dir.iterdir() if d.is_dir())]:
                remove_orphaned_temporaries(folder)
            with stop_on_interrupt() as stop:
                return _run_models(config, output_dir, resume=resume, progress=progress, data=data,
                                   keep_checkpoints=keep_checkpoints, brian_cache_dir=brian_cache_dir,
                                   stop=stop)
    except BaseException:
        if created:
            remove_if_empty(output_dir)
        raise


def _run_models(config: ExperimentConfig, output_dir: Path, *, resume: bool, progress: bool,
                data: PreparedData | None, keep_checkpoints: bool, brian_cache_dir, stop=None) -> dict:
    """The models of the run, one after the other, and ``results.json`` (the folder is held)."""
    from .interrupt import RunInterrupted

    if data is None:
        data = prepare_data(config)
        if stop is not None and stop.requested:
            raise RunInterrupted("interrupted while loading the data; nothing was trained yet")
    logger.info("data: %s", data.description)
    models = []
    if config.development_enabled:
        if config.run.baseline:
            models.append(("dense", False))
        models.append(("sdsnn", True))
    else:
        models.append(("dense", False))
    results = {
        "config": config.to_dict(), "data": data.description, "models": {},
        "protocol": {
            "validation": VALIDATION_PROTOCOL if len(data.validation) or config.data.validation_fraction
            else "no validation split (data.validation_fraction = 0)",
            "test": TEST_PROTOCOL,
            "reported": "final epoch (not the best epoch) for every number",
        },
    }
    if not config.development_enabled:
        logger.warning("no development configured (development.enabled = false): this run trains "
                       "a dense network only; set development.enabled = true for SD-SNN")
    for index, (name, development) in enumerate(models):
        directory = output_dir / name
        finished = directory / MODEL_RESULT
        if resume and finished.is_file():
            previous = load_model_result(directory)
            if same_configuration(previous.get("config") or {}, config.to_dict()):
                logger.info("%s: already finished, result reused", name)
                results["models"][name] = previous
                continue
        results["models"][name] = train_model(
            config, data, directory, development=development, resume=resume, progress=progress,
            keep_checkpoint=keep_checkpoints, brian_cache_dir=brian_cache_dir, stop=stop,
            epochs_after=config.learning.epochs * (len(models) - index - 1),
        )
    if "dense" in results["models"] and "sdsnn" in results["models"]:
        dense, developed = results["models"]["dense"], results["models"]["sdsnn"]
        results["comparison"] = {
            "dense_validation_accuracy": dense.get("final_validation_accuracy"),
            "sdsnn_validation_accuracy": developed.get("final_validation_accuracy"),
            "dense_test_accuracy": dense["final_test_accuracy"],
            "sdsnn_test_accuracy": developed["final_test_accuracy"],
            "accuracy_difference": developed["final_test_accuracy"] - dense["final_test_accuracy"],
            "synapses_removed_fraction": developed["structure"]["synapses_removed_fraction"],
            "hidden_neurons_removed_fraction": developed["structure"]["hidden_neurons_removed_fraction"],
            "dense_sops_per_sample": dense["test"]["energy"]["sops_per_sample"],
            "sdsnn_sops_per_sample": developed["test"]["energy"]["sops_per_sample"],
        }
    write_json(output_dir / RESULTS, results)
    return results

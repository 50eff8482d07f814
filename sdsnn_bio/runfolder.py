"""The run folder is a format: its file names, the checkpoint schema and the loaders, in one place.

:mod:`sdsnn_bio.experiment` writes run folders, :mod:`sdsnn_bio.plotting` reads them and
:mod:`sdsnn_bio.sweep` holds one per point; all three take the names and the readers from here, so
no file name of a run folder appears as a string literal anywhere else.

A run folder (``sdsnn-bio run --output RUN``)::

    RUN/
      results.json        the run: configuration, data, validation/test protocol, every model's result
      figures/            where ``sdsnn-bio plot RUN`` writes by default
      <model>/            one per model trained: ``dense``, ``sdsnn``
        result.json       the model's result; written last, its presence marks the model finished
        checkpoint.npz    everything ``--resume`` needs, exact (the learner's dtype, RNG states); removed after
                          the model finished unless ``--keep-checkpoints``
        structure.npz     the final structure's anatomy (weights, masks, spine ranges; float32,
                          compressed), for analysis and figures; counters are in the checkpoint
        rasters.npz       Brian2 spikes of a few test samples before and after (compressed)
        monitors.npz      the development monitors' recordings ([[monitor]] tables; exact values,
                          compressed), written before every checkpoint and at the end

A sweep folder (``sdsnn-bio sweep --output SWEEP``)::

    SWEEP/
      points/<point>/     a run folder per grid point and seed, plus point.json (its summary); the
                          name holds the swept values and the seed (a hash when long)
      sweep_points.json   fixed overrides, swept axes, each point folder's full parameters
      brian_cache/        Brian2 code caches of the workers (never part of a configuration)
      sweep.csv, sweep.json, sweep_summary.csv, sweep.png

Sizes: the checkpoint stays exact (the learner's float64, or float32 with ``learning.dtype =
"float32"``) and uncompressed (resume must be bit-exact, and it is written
every epoch, where compression would cost seconds each time); the files kept after a run are
float32 where they are only read by people and figures, with the smallest integer type that holds
the values, and compressed. For the main job's two 2312-800-10 models the structures take about
7 MB (dense) + 20 MB (SD-SNN): measured with random weights and spine ranges of those shapes, half
the synapses absent (random values compress worst).

A run holds an ``flock`` on its folder (:func:`hold_run_folder`); a second run into it is refused,
as is a rerun into an unfinished run without ``--resume`` or ``--overwrite`` (:func:`check_rerun`).

Checkpoint schema (``checkpoint.npz``, format :data:`CHECKPOINT_FORMAT`): the arrays of
:meth:`sdsnn_bio.structure.Structure.to_arrays` (prefix ``structure/``), the optimiser state
(prefix ``adam/``) and ``meta``, a JSON string with ``format``, ``config`` (the configuration
echo), ``data_fingerprint``, ``epoch``, ``batch_in_epoch``, ``global_batch``, ``history``,
``development_log``, ``permutation``, ``shuffle_rng``, ``scheduler_state`` and ``epoch_totals``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import atomic_open

__all__ = [
    "RESULTS", "MODEL_RESULT", "CHECKPOINT", "STRUCTURE", "RASTERS", "MONITORS", "FIGURES", "POINT",
    "POINTS", "POINT_LOG", "BRIAN_CACHE", "SWEEP_TABLE", "SWEEP_JSON", "SWEEP_SUMMARY", "SWEEP_FIGURE", "SWEEP_POINTS",
    "CHECKPOINT_FORMAT", "RunFolderError", "Checkpoint", "write_json", "read_json",
    "write_checkpoint", "read_checkpoint", "save_structure", "load_structure", "save_rasters",
    "load_rasters", "load_results", "load_model_result", "remove_checkpoint",
    "remove_orphaned_temporaries", "RunFolderBusy", "hold_run_folder", "unfinished_checkpoints",
    "check_rerun", "clear_run", "prepare_output_folder", "remove_if_empty", "STRUCTURE_SPINE_FIELDS",
]

RESULTS = "results.json"
MODEL_RESULT = "result.json"
CHECKPOINT = "checkpoint.npz"
STRUCTURE = "structure.npz"
RASTERS = "rasters.npz"
MONITORS = "monitors.npz"
FIGURES = "figures"
POINT = "point.json"
POINTS = "points"
POINT_LOG = "run.log"
BRIAN_CACHE = "brian_cache"
SWEEP_TABLE = "sweep.csv"
SWEEP_JSON = "sweep.json"
SWEEP_SUMMARY = "sweep_summary.csv"
SWEEP_FIGURE = "sweep.png"
SWEEP_POINTS = "sweep_points.json"

#: Version of the checkpoint schema; a checkpoint of another format is refused with its number.
CHECKPOINT_FORMAT = 2

#: What a damaged ``.npz`` raises while it is opened or read.
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError)


class RunFolderError(ValueError):
    """A file of a run folder is missing, truncated, corrupt or of another format (named)."""


class RunFolderBusy(RunFolderError):
    """Another process is writing into the run folder."""


# ---------------------------------------------------------------------------------------- the folder
def prepare_output_folder(run_dir: str | os.PathLike, option: str = "--output") -> tuple[Path, bool]:
    """Create the run folder; returns ``(path, created)``. A path naming a file is an error."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"{option}: {run_dir} is a file; expected a folder for the run's outputs")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunFolderError(f"{option}: cannot create the folder {run_dir} ({err.strerror or err})") from None
    return run_dir, created


def remove_if_empty(run_dir: str | os.PathLike) -> bool:
    """Remove a folder tree that holds no file (what a run that failed early leaves); True if removed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or any(p.is_file() or p.is_symlink() for p in run_dir.rglob("*")):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return not run_dir.exists()


@contextlib.contextmanager
def hold_run_folder(run_dir: str | os.PathLike):
    """Hold an exclusive lock on the run folder while writing into it.

    The lock is an advisory ``flock`` on the folder itself (no lock file to leave behind); the
    operating system releases it when the process ends, however it ends.

    Raises
    ------
    RunFolderBusy
        Another process holds the folder.
    """
    run_dir = Path(run_dir)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no advisory locks, run unguarded
        yield run_dir
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderBusy(
                f"{run_dir}: another run is writing into this folder; wait for it to finish or "
                "choose another --output"
            ) from None
        yield run_dir
    finally:
        os.close(fd)  # releases the lock


def unfinished_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints of models that have not finished (no ``result.json`` beside them)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(path for path in run_dir.glob(f"*/{CHECKPOINT}")
                  if not (path.parent / MODEL_RESULT).is_file())


def check_rerun(run_dir: str | os.PathLike, *, resume: bool, overwrite: bool) -> None:
    """Refuse to start over a run folder holding an unfinished run, unless told what to do."""
    if resume or overwrite:
        return
    unfinished = unfinished_checkpoints(run_dir)
    if unfinished:
        raise RunFolderError(
            f"{run_dir} holds an unfinished run (checkpoint {unfinished[0]}); continue it with "
            "--resume (same command), or discard it with --overwrite"
        )


def clear_run(run_dir: str | os.PathLike) -> list[Path]:
    """Delete the run-folder files of a previous run (``--overwrite``); other files are kept."""
    run_dir = Path(run_dir)
    removed = []
    names = (MODEL_RESULT, CHECKPOINT, STRUCTURE, RASTERS)
    for path in [run_dir / RESULTS, *(d / n for d in run_dir.iterdir() if d.is_dir() for n in names)]:
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


# ---------------------------------------------------------------------------------------- JSON
def write_json(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically (temporary file, then rename)."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return Path(path)


def read_json(path: str | os.PathLike, what: str) -> dict:
    """Read a JSON object; a missing or damaged file is a :class:`RunFolderError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {what} file")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFolderError(f"{path}: malformed {what} file, not valid JSON ({err})") from None
    if not isinstance(payload, dict):
        raise RunFolderError(f"{path}: malformed {what} file, expected a JSON object")
    return payload


# ---------------------------------------------------------------------------------------- npz
def _save_npz(path: str | os.PathLike, arrays: dict, compressed: bool) -> Path:
    with atomic_open(path) as handle:
        (np.savez_compressed if compressed else np.savez)(handle, **arrays)
    return Path(path)


def _read_npz(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read now, with damage reported as a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {what} file")
    if not zipfile.is_zipfile(path):
        raise RunFolderError(
            f"{path}: not a {what} file (not an .npz archive; the file is truncated or corrupt); "
            "delete it and run again"
        )
    try:
        with np.load(path, allow_pickle=False) as saved:
            return {key: saved[key] for key in saved.files}
    except _DAMAGE as err:
        reason = "holds Python objects" if "pickle" in str(err) else f"{type(err).__name__}: {err}"
        raise RunFolderError(
            f"{path}: damaged {what} file (truncated or corrupt: {reason}); delete it and run again"
        ) from None


def _compact_integers(values: np.ndarray) -> np.ndarray:
    """The smallest integer type holding ``values`` (exact)."""
    values = np.asarray(values)
    if values.size == 0:
        return values.astype(np.int8)
    return values.astype(np.result_type(np.min_scalar_type(int(values.min())),
                                        np.min_scalar_type(int(values.max()))))


# ---------------------------------------------------------------------------------------- checkpoint
@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back: its ``meta`` mapping and every array (structure and optimiser)."""

    path: Path
    meta: dict
    arrays: dict


def write_checkpoint(path: str | os.PathLike, structure, optimizer_arrays: dict, meta: dict) -> Path:
    """Write a checkpoint atomically: exact arrays, uncompressed (fast, resume bit-exact).

    Arrays keep their type: float64, or float32 for the weights and Adam moments of a learner
    with ``learning.dtype = "float32"``.

    Parameters
    ----------
    path : path
    structure : Structure
    optimizer_arrays : dict of ndarray
        The optimiser's state (``Adam.state_arrays()``).
    meta : dict
        JSON-ready run state (see the module docstring); ``format`` is added.
    """
    arrays = structure.to_arrays()
    arrays.update(optimizer_arrays)
    arrays["meta"] = np.array(json.dumps({**meta, "format": CHECKPOINT_FORMAT}))
    return _save_npz(path, arrays, compressed=False)


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint; a damaged file or one of another format is a :class:`RunFolderError`."""
    path = Path(path)
    arrays = _read_npz(path, "checkpoint")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, json.JSONDecodeError) as err:
        raise RunFolderError(f"{path}: damaged checkpoint file (no readable 'meta': {err}); "
                             "delete it and run again") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise RunFolderError(
            f"{path}: checkpoint of format {found}, this version reads format {CHECKPOINT_FORMAT}; "
            "start the run again (--overwrite) or use the version that wrote it"
        )
    return Checkpoint(path, meta, arrays)


def remove_checkpoint(model_dir: str | os.PathLike) -> None:
    """Delete a finished model's checkpoint (and any temporary file a killed write left)."""
    model_dir = Path(model_dir)
    (model_dir / CHECKPOINT).unlink(missing_ok=True)
    remove_orphaned_temporaries(model_dir)


def remove_orphaned_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files of :func:`~sdsnn_bio.files.atomic_open` that a killed write left.

    Only files named like atomic_open's temporaries (``.<name>.<random>.tmp``) of the run
    folder's own files are removed. Call it only while holding the folder (no other writer).
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    names = (RESULTS, MODEL_RESULT, CHECKPOINT, STRUCTURE, RASTERS, POINT)
    for path in folder.iterdir():
        if path.is_file() and path.suffix == ".tmp" and any(path.name.startswith(f".{n}.") for n in names):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# ---------------------------------------------------------------------------------------- structure
#: Spine arrays a final structure file keeps: the anatomy (the range each weight is bound to).
#: The development counters (streaks, excess sums, previous ``|w|``) only matter to continue
#: development, which resumes from the checkpoint; a loaded structure gets them fresh.
STRUCTURE_SPINE_FIELDS = ("lower", "upper")


def save_structure(path: str | os.PathLike, structure) -> Path:
    """Write the final structure for analysis and figures: its anatomy, float32, compressed.

    Kept: every population's ``alive`` mask, every projection's weight (float32), existence mask
    and spine range ``[lower, upper]`` (float32). Not kept: the development counters (see
    :data:`STRUCTURE_SPINE_FIELDS`). The exact float64 state, counters included, lives in the
    checkpoint (kept with ``--keep-checkpoints``); :func:`load_structure` returns float64 arrays.
    """
    from .structure import SPINE_FIELDS

    dropped = tuple(f"/spine/{name}" for name in SPINE_FIELDS if name not in STRUCTURE_SPINE_FIELDS)
    arrays = {}
    for key, values in structure.to_arrays().items():
        if key.endswith(dropped):
            continue
        values = np.asarray(values)
        if values.dtype.kind == "f":
            values = values.astype(np.float32)
        arrays[key] = values
    return _save_npz(path, arrays, compressed=True)


def load_structure(path: str | os.PathLike):
    """Read a structure file (``structure.npz``, an older full one, or a checkpoint) as a :class:`Structure`.

    Development counters missing from the file start fresh (zero streaks and excess sums,
    previous ``|w|`` = ``|w|``), as after :meth:`SpineState.from_weights`.
    """
    from .structure import SPINE_FIELDS, Structure

    arrays = _read_npz(path, "structure")
    try:
        projections = arrays["structure/projections"]
        for name, _, _ in projections:
            base = f"structure/projection/{name}"
            weight = np.asarray(arrays[f"{base}/weight"], dtype=np.float64)
            fresh = {"upper_excess": np.zeros(weight.shape), "lower_excess": np.zeros(weight.shape),
                     "previous_abs_weight": np.abs(weight)}
            for field_name in SPINE_FIELDS:
                key = f"{base}/spine/{field_name}"
                if key not in arrays:
                    arrays[key] = fresh.get(field_name, np.zeros(weight.shape, np.int32))
    except KeyError as err:
        raise RunFolderError(f"{path}: not a sdsnn_bio structure (missing array {err.args[0]!r})") from None
    structure = Structure.from_arrays(arrays, source=str(path))
    for projection in structure.projections:
        projection.weight = projection.weight.astype(np.float64)  # stored float32; a learner converts
        for name in ("upper_streak", "lower_streak", "shrink_streak", "regrowth_streak"):
            setattr(projection.spine, name, getattr(projection.spine, name).astype(np.int32))
        for name in ("lower", "upper", "upper_excess", "lower_excess", "previous_abs_weight"):
            setattr(projection.spine, name, getattr(projection.spine, name).astype(np.float64))
    return structure


# ---------------------------------------------------------------------------------------- rasters
def save_rasters(path: str | os.PathLike, arrays: dict) -> Path:
    """Write spike rasters (integer arrays, stored in the smallest type that holds them), compressed."""
    return _save_npz(path, {key: _compact_integers(values) for key, values in arrays.items()},
                     compressed=True)


def load_rasters(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read ``rasters.npz`` (integer arrays as int64)."""
    return {key: np.asarray(values, dtype=np.int64) for key, values in _read_npz(path, "rasters").items()}


# ---------------------------------------------------------------------------------------- results
def load_results(run_dir: str | os.PathLike) -> dict:
    """Read ``RUN/results.json``; errors name the file and what was expected."""
    path = Path(run_dir) / RESULTS
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no results file (expected the folder written by `sdsnn-bio run`, holding {RESULTS})"
        )
    results = read_json(path, "results")
    if not isinstance(results.get("models"), dict):
        raise RunFolderError(f"{path}: malformed results file, expected an object with a 'models' mapping")
    for name, result in results["models"].items():
        if not isinstance(result, dict):
            raise RunFolderError(f"{path}: malformed results file, models[{name!r}] is not an object")
    return results


def load_model_result(model_dir: str | os.PathLike) -> dict:
    """Read ``RUN/<model>/result.json`` (a finished model)."""
    return read_json(Path(model_dir) / MODEL_RESULT, "model result")

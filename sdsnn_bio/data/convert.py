"""Grayscale images (an array, or MNIST's IDX files) recorded by the emulator into an N-MNIST folder.

The output is the layout :func:`~sdsnn_bio.data.nmnist.find_recordings` reads::

    OUTPUT/Train/<digit>/<index>.bin
    OUTPUT/Validation/<digit>/<index>.bin     (when validation > 0)
    OUTPUT/Test/<digit>/<index>.bin           (when test > 0)
    OUTPUT/provenance.json

``<index>`` is the image's position in the source (zero-padded to at least 5 digits), so every
recording can be traced back to its image.

Split
    :func:`stratified_split` draws ``train``, ``validation`` and ``test`` disjoint sets from the
    source, each stratified: split ``s`` gets from class ``c`` its share ``N_s * n_c / n`` rounded by
    largest remainder (ties to the lower class), drawn from a per-class permutation fixed by
    ``seed``; a class that runs short gives what it has and the rest comes from the classes with the
    most images left. Indices are sorted within each split.
Recordings
    Image ``i`` is recorded by :func:`~sdsnn_bio.data.emulator.emulate_batch` with its own generator
    ``default_rng(SeedSequence(seed, spawn_key=(1, i)))``: the folder is a function of the source,
    the seed and the emulator parameters only, not of the number of workers, the chunking or the
    order in which files are written (and an image gets the same recording whatever its split).
Geometry
    The emulator's calibrated box (``EmulatorParameters.image_size``, 20 pixels) holds a digit. MNIST
    centres a 20x20 digit box in 28x28 images, so with ``digit_box=20`` a 28x28 image is drawn
    28 pixels wide and moved so that its central 20x20 box lands on the calibrated box
    (``image_size = 28``, ``start_position`` shifted by -4 pixels): digits keep MNIST's size on the
    sensor. ``digit_box=None`` treats the whole image as the digit (scikit-learn's 8x8 digits).
Resuming and atomicity
    Every file is written to a temporary file in its folder and renamed into place. A rerun into
    the same folder with the same request skips every file already present and decodable, so an
    interrupted conversion continues where it stopped; a different request (another source, seed,
    parameter or split) is refused, naming what differs. ``provenance.json`` is written first with
    ``"complete": false`` and rewritten with ``"complete": true`` once every file exists. An
    exclusive lock on ``OUTPUT/.emulate.lock`` keeps two conversions out of one folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .emulator import EMULATOR_VERSION, EmulatorParameters, emulate_batch
from .format import DataError, decode_nmnist, encode_nmnist

__all__ = [
    "PROVENANCE_NAME",
    "SPLIT_FOLDERS",
    "MNIST_DIGIT_BOX",
    "stratified_split",
    "digit_box_parameters",
    "emulate_images",
    "emulate_idx",
]

logger = logging.getLogger(__name__)

#: Provenance file written into every converted folder.
PROVENANCE_NAME = "provenance.json"
#: Split name -> folder (the names the reader looks for).
SPLIT_FOLDERS = {"train": "Train", "validation": "Validation", "test": "Test"}
#: MNIST's digits are normalised into a 20x20 box centred in the 28x28 image.
MNIST_DIGIT_BOX = 20
#: Version of the folder layout, split rule and seeding (bumped when the output would change).
CONVERSION_VERSION = 1
_LOCK_NAME = ".emulate.lock"
_CHUNK = 64


# ----------------------------------------------------------------------------------------- split
def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weights`` summing to ``total`` (Hamilton's method)."""
    exact = total * weights / weights.sum()
    quota = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(weights.size), -(exact - quota)))
    quota[order[: total - int(quota.sum())]] += 1
    return quota


def stratified_split(labels, counts: dict, seed: int) -> dict:
    """Disjoint stratified splits of a labelled source.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Class of every source image.
    counts : dict of str -> int
        Wanted size of every split, in order (e.g. ``{"train": 12000, "validation": 3000,
        "test": 5000}``); their sum must not exceed ``n``. Zero-sized splits are returned empty.
    seed : int
        Fixes the per-class permutations (and nothing else).

    Returns
    -------
    dict of str -> ndarray of int64
        Sorted source indices of every split.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"{name}: expected a number of recordings >= 0, got {count!r}")
    wanted = sum(int(c) for c in counts.values())
    if wanted > labels.size:
        raise ValueError(
            f"split: {' + '.join(f'{k} {v}' for k, v in counts.items())} = {wanted} recordings requested, "
            f"but the source holds only {labels.size} images"
        )
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0,)))
    classes, class_sizes = np.unique(labels, return_counts=True)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    taken = np.zeros(classes.size, dtype=np.int64)
    splits = {}
    for name, count in counts.items():
        count = int(count)
        quota = np.minimum(_largest_remainder(count, class_sizes.astype(np.float64)), class_sizes - taken)
        while quota.sum() < count:  # a class ran short: the classes with the most left give the rest
            left = class_sizes - taken - quota
            quota[int(np.argmax(left))] += 1
        chosen = [pools[k][taken[k]:taken[k] + quota[k]] for k in range(classes.size)]
        taken += quota
        splits[name] = np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.zeros(0, np.int64)
    return splits


# ----------------------------------------------------------------------------------------- geometry
def digit_box_parameters(params: EmulatorParameters, image_shape, digit_box) -> EmulatorParameters:
    """Emulator parameters that put an image's central ``digit_box`` onto the calibrated box.

    Parameters
    ----------
    params : EmulatorParameters
        The calibrated camera (its ``image_size`` and ``start_position`` place a digit).
    image_shape : (int, int)
        Height and width of the source images, in source pixels.
    digit_box : int or None
        Side of the digit's box in source pixels (MNIST: 20 of 28); None: the whole image.

    Returns
    -------
    EmulatorParameters
        ``image_size = round(params.image_size * max(image_shape) / digit_box)`` and
        ``start_position`` moved by half the growth, so the digit box keeps its place and size.
    """
    if digit_box is None:
        return params
    longest = max(int(v) for v in image_shape)
    if isinstance(digit_box, bool) or not isinstance(digit_box, (int, np.integer)) or not 1 <= digit_box <= longest:
        raise ValueError(f"digit_box: expected None or an integer in [1, {longest}] (source pixels), got {digit_box!r}")
    image_size = int(round(params.image_size * longest / int(digit_box)))
    shift = (image_size - params.image_size) / 2.0
    values = params.to_dict()
    values["image_size"] = image_size
    values["start_position"] = [params.start_position[0] - shift, params.start_position[1] - shift]
    return EmulatorParameters.from_dict(values)


# ----------------------------------------------------------------------------------------- writing
def _recording_name(index: int, width: int) -> str:
    return f"{index:0{width}d}.bin"


def _is_valid_recording(path: Path) -> bool:
    """An existing, non-empty, decodable N-MNIST file (what a finished write leaves)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if not data:
        return False
    try:
        decode_nmnist(data, str(path))
    except DataError:
        return False
    return True


def _write_atomically(path: Path, content: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _emulate_chunk(job: tuple) -> tuple[int, int]:
    """Record one chunk of images and write the files that are missing (runs in a worker).

    Returns ``(written, skipped)``.
    """
    images, indices, paths, seed, params_dict, value_range = job
    params = EmulatorParameters.from_dict(params_dict)
    todo = [k for k, path in enumerate(paths) if not _is_valid_recording(Path(path))]
    if todo:
        rngs = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, int(indices[k])))) for k in todo]
        recordings = emulate_batch([images[k] for k in todo], rngs, params, value_range=value_range)
        for k, events in zip(todo, recordings):
            _write_atomically(Path(paths[k]), encode_nmnist(events))
    return len(todo), len(paths) - len(todo)


@contextlib.contextmanager
def _folder_lock(folder: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(folder / _LOCK_NAME, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DataError(f"{folder}: another conversion is writing into this folder (lock {_LOCK_NAME})") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_provenance(folder: Path) -> dict | None:
    path = folder / PROVENANCE_NAME
    if not path.exists():
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            provenance = json.load(handle)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable provenance file ({error}); delete the folder to start again") from error
    if not isinstance(provenance, dict) or not isinstance(provenance.get("request"), dict):
        raise DataError(f"{path}: expected a provenance file with a 'request' object; delete the folder to start again")
    return provenance


def _write_json(path: Path, payload: dict) -> None:
    from ..files import atomic_open

    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=1)
        handle.write("\n")


def _check_output(folder: Path, request: dict) -> None:
    """Refuse a folder holding something else than an earlier run of the same request."""
    provenance = _read_provenance(folder)
    if provenance is None:
        foreign = sorted(p.name for p in folder.iterdir() if p.name != _LOCK_NAME)
        if foreign:
            raise DataError(
                f"{folder}: output folder is not empty and holds no {PROVENANCE_NAME} (found {foreign[:5]}); "
                "choose an empty or new folder"
            )
        return
    earlier = provenance["request"]
    differing = sorted(k for k in set(earlier) | set(request) if earlier.get(k) != request.get(k))
    if differing:
        raise DataError(
            f"{folder}: holds a conversion of another request (differs in {', '.join(differing)}); "
            "resume only with the same source, seed, parameters and split, or choose a new folder"
        )


def _positive_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def _array_md5(array: np.ndarray) -> str:
    digest = hashlib.md5()
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def emulate_images(images, labels, output, *, train: int, validation: int = 0, test: int = 0, seed: int = 0,
                   workers: int = 1, params: EmulatorParameters | None = None, value_range=None,
                   digit_box: int | None = None, progress: bool = True, source: dict | None = None,
                   command: str | None = None) -> dict:
    """Record labelled grayscale images into an N-MNIST folder with a stratified split.

    Parameters
    ----------
    images : array_like, shape (n, height, width)
        Grayscale images (bright = ink), any numeric type.
    labels : array_like of int, shape (n,)
        Digit class 0-9 of every image.
    output : str or os.PathLike
        Folder to write (created; see the module docstring for resuming).
    train, validation, test : int
        Recordings per split (stratified; disjoint; sum at most ``n``).
    seed : int
        Seed of the split and of every recording's generator.
    workers : int
        Processes recording in parallel (1: in this process). The output does not depend on it.
    params : EmulatorParameters, optional
        Camera (default: the calibrated defaults), adjusted by ``digit_box``.
    value_range : (float, float), optional
        Intensities mapped to background and full ink (default: each image's own minimum and
        maximum; MNIST's uint8 images: ``(0, 255)``).
    digit_box : int, optional
        Side of the digit's box inside the image, in source pixels (see the module docstring).
    progress : bool
        Progress bar on a terminal (and a log line every 10%).
    source : dict, optional
        Description of the source for the provenance (default: the md5 of the arrays).
    command : str, optional
        Command line recorded in the provenance.

    Returns
    -------
    dict
        The provenance written to ``OUTPUT/provenance.json``.
    """
    from ..progress import progress_bar

    started = time.perf_counter()
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3 or min(images.shape) < 1:
        raise ValueError(f"images: expected an array (n, height, width) of grayscale images, got shape {images.shape}")
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected {images.shape[0]} integer labels (one per image), got shape "
                         f"{labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"labels: expected digits 0-9, got values in [{labels.min()}, {labels.max()}]")
    train = _positive_int("train", train, 1)
    validation = _positive_int("validation", validation, 0)
    test = _positive_int("test", test, 0)
    seed = _positive_int("seed", seed, 0)
    workers = _positive_int("workers", workers, 1)
    params = EmulatorParameters() if params is None else params
    if not isinstance(params, EmulatorParameters):
        raise ValueError(f"params: expected EmulatorParameters, got {type(params).__name__}")
    params = digit_box_parameters(params, images.shape[1:], digit_box)
    if value_range is not None:
        value_range = [float(v) for v in value_range]
        if len(value_range) != 2 or not value_range[0] < value_range[1]:
            raise ValueError(f"value_range: expected (low, high) with low < high, got {value_range!r}")

    splits = stratified_split(labels, {"train": train, "validation": validation, "test": test}, seed)
    width = max(5, len(str(images.shape[0] - 1)))
    if source is None:
        source = {"images": {"md5": _array_md5(images)}, "labels": {"md5": _array_md5(labels)}}
    request = {
        "conversion_version": CONVERSION_VERSION,
        "generator": "sdsnn_bio.data.emulator.emulate_batch",
        "emulator_version": EMULATOR_VERSION,
        "parameters": params.to_dict(),
        "value_range": value_range,
        "digit_box": None if digit_box is None else int(digit_box),
        "seed": seed,
        "source": {key: {k: v for k, v in value.items() if k != "path"} for key, value in source.items()},
        "image_shape": [int(v) for v in images.shape],
        "split_sizes": {name: int(idx.size) for name, idx in splits.items()},
        "split_indices": {name: [int(i) for i in idx] for name, idx in splits.items()},
    }

    folder = Path(output).expanduser()
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: --output names an existing file, expected a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"{folder}: cannot create the output folder ({error})") from error

    with _folder_lock(folder):
        _check_output(folder, request)
        jobs, n_total = [], 0
        for name, indices in splits.items():
            if not indices.size:
                continue
            for label in range(10):
                class_folder = folder / SPLIT_FOLDERS[name] / str(label)
                class_folder.mkdir(parents=True, exist_ok=True)
                for leftover in class_folder.glob(".*.tmp"):  # interrupted writes of an earlier run
                    leftover.unlink()
            paths = [str(folder / SPLIT_FOLDERS[name] / str(int(labels[i])) / _recording_name(int(i), width))
                     for i in indices]
            for start in range(0, indices.size, _CHUNK):
                chunk = indices[start:start + _CHUNK]
                jobs.append((images[chunk], chunk, paths[start:start + _CHUNK], seed, params.to_dict(), value_range))
            n_total += int(indices.size)
        provenance = {
            "complete": False,
            "request": request,
            "source_paths": {key: value.get("path") for key, value in source.items()},
            "command": command,
            "format": "N-MNIST .bin (5-byte events); Train|Validation|Test/<digit>/<source index>.bin",
        }
        _write_json(folder / PROVENANCE_NAME, provenance)
        logger.info("recording %d images into %s with %d worker(s)", n_total, folder, workers)

        written = skipped = done = 0
        next_log = 0.1
        with progress_bar(n_total, "emulating", enabled=progress) as bar, contextlib.ExitStack() as stack:
            if workers == 1:
                results = map(_emulate_chunk, jobs)
            else:
                pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")))
                results = pool.map(_emulate_chunk, jobs)
            for n_written, n_skipped in results:
                written += n_written
                skipped += n_skipped
                done += n_written + n_skipped
                bar.update(n_written + n_skipped)
                if progress and done >= next_log * n_total and not sys.stderr.isatty():
                    logger.info("%d / %d recordings (%d%%)", done, n_total, int(100 * done / n_total))
                    next_log = math.floor(10 * done / n_total) / 10 + 0.1

        provenance.update(
            complete=True,
            recordings_written=written,
            recordings_already_present=skipped,
            wall_seconds=round(time.perf_counter() - started, 2),
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            versions=_versions(),
        )
        _write_json(folder / PROVENANCE_NAME, provenance)
    logger.info("%d recordings written, %d already present, in %.1f s", written, skipped, provenance["wall_seconds"])
    return provenance


def _versions() -> dict:
    from .. import __version__

    return {"sdsnn_bio": __version__, "numpy": np.__version__, "python": sys.version.split()[0]}


def emulate_idx(images_path, labels_path, output, *, digit_box: int | None = MNIST_DIGIT_BOX,
                value_range=None, **options) -> dict:
    """Record an IDX image file (with its IDX label file) into an N-MNIST folder.

    Parameters
    ----------
    images_path, labels_path : str or os.PathLike
        IDX files (gzip or not), e.g. MNIST's ``train-images-idx3-ubyte.gz`` and
        ``train-labels-idx1-ubyte.gz``: images ``(n, height, width)``, labels ``(n,)``.
    output : str or os.PathLike
        Folder to write.
    digit_box : int or None
        Digit box inside the images in source pixels (default 20, MNIST's convention).
    value_range : (float, float), optional
        Default ``(0, 255)`` for uint8 images, else each image's own range.
    **options
        ``train``, ``validation``, ``test``, ``seed``, ``workers``, ``params``, ``progress``,
        ``command``: as in :func:`emulate_images`.

    Returns
    -------
    dict
        The provenance (``source`` holds both files' paths, md5 and shapes).
    """
    from .idx import file_md5, read_idx

    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected IDX images of shape (n, height, width), got shape {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{labels_path}: expected {images.shape[0]} integer labels (one per image of {images_path}), got "
            f"shape {labels.shape} dtype {labels.dtype}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{labels_path}: expected digit labels 0-9, got values in [{labels.min()}, {labels.max()}]")
    if value_range is None and images.dtype == np.uint8:
        value_range = (0.0, 255.0)
    source = {
        "images": {"path": str(Path(images_path).resolve()), "md5": file_md5(images_path),
                   "shape": list(images.shape), "dtype": images.dtype.name},
        "labels": {"path": str(Path(labels_path).resolve()), "md5": file_md5(labels_path),
                   "shape": list(labels.shape), "dtype": labels.dtype.name},
    }
    return emulate_images(images, labels.astype(np.int64), output, digit_box=digit_box, value_range=value_range,
                          source=source, **options)

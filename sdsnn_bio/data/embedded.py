"""The embedded offline dataset: scikit-learn's handwritten digits recorded by the emulated camera.

The 1797 8x8 handwritten digits bundled with scikit-learn (``sklearn.datasets.load_digits``, the UCI
"Optical Recognition of Handwritten Digits" test set; no download) are recorded by
:func:`~sdsnn_bio.data.emulator.emulate_batch` during the three N-MNIST saccades and written in the
real N-MNIST layout, so that real and embedded data flow through the same reader::

    CACHE/embedded_nmnist/Train/<digit>/<index>.bin
    CACHE/embedded_nmnist/Test/<digit>/<index>.bin
    CACHE/embedded_nmnist/manifest.json

``<index>`` is the digit's index in ``load_digits()`` (provenance). The split is stratified: in each
class ``round(test_fraction * n)`` digits (at least one, and at least one left for training) go to
``Test``, chosen by a generator seeded from ``seed``; recording ``i`` uses its own generator seeded
from ``(seed, i)``, so the whole set is a deterministic function of ``seed`` and the parameters.

Cache
    ``CACHE`` is ``cache_dir`` if given, else ``$SDSNN_BIO_CACHE``, else ``~/.cache/sdsnn_bio``.
    The manifest records the generator version, the emulator parameters, the seed, the split, the
    file counts and the MD5 of every file; a cache whose manifest does not match the request, whose
    files are missing, or one of whose files does not match its checksum (a corrupted file) is
    regenerated (checked on every use: hashing the 41 MB takes about 0.1 s). Generation happens in a
    temporary folder beside the cache, which is renamed into place only once complete (an
    interrupted generation never leaves a half cache), under an exclusive ``fcntl`` lock on
    ``CACHE/embedded_nmnist.lock`` (two processes never generate at once; the second one finds the
    first one's result).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from .emulator import EMULATOR_VERSION, EmulatorParameters, emulate_batch
from .format import DataError, encode_nmnist

__all__ = [
    "EMBEDDED_SEED",
    "TEST_FRACTION",
    "EMBEDDED_FOLDER",
    "MANIFEST_NAME",
    "CACHE_ENVIRONMENT_VARIABLE",
    "DIGITS_VALUE_RANGE",
    "default_cache_dir",
    "embedded_root",
    "read_manifest",
]

logger = logging.getLogger(__name__)

#: Seed of the embedded dataset (fixed: the run seed only chooses subsets, never the data).
EMBEDDED_SEED = 0
#: Fraction of every class written to ``Test`` (stratified 80/20 split).
TEST_FRACTION = 0.2
#: Folder of the embedded dataset inside the cache.
EMBEDDED_FOLDER = "embedded_nmnist"
MANIFEST_NAME = "manifest.json"
CACHE_ENVIRONMENT_VARIABLE = "SDSNN_BIO_CACHE"
#: Intensities of ``load_digits`` images: 0 (background) to 16 (ink).
DIGITS_VALUE_RANGE = (0.0, 16.0)
#: Version of the cache layout and split rule (bumped when they change; 2: per-file checksums).
CACHE_VERSION = 2
_BATCH = 128


def default_cache_dir() -> Path:
    """``$SDSNN_BIO_CACHE`` if set (and not empty), else ``~/.cache/sdsnn_bio``."""
    configured = os.environ.get(CACHE_ENVIRONMENT_VARIABLE, "")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "sdsnn_bio"


def _request(seed: int, params: EmulatorParameters, test_fraction: float, max_per_class) -> dict:
    """The manifest fields that identify a generated set (compared to decide staleness)."""
    return {
        "cache_version": CACHE_VERSION,
        "generator": "sdsnn_bio.data.emulator",
        "generator_version": EMULATOR_VERSION,
        "source": "sklearn.datasets.load_digits",
        "value_range": list(DIGITS_VALUE_RANGE),
        "seed": int(seed),
        "test_fraction": float(test_fraction),
        "max_per_class": None if max_per_class is None else int(max_per_class),
        "parameters": params.to_dict(),
    }


def read_manifest(folder) -> dict | None:
    """The manifest of an embedded-dataset folder, or None if absent or unreadable."""
    try:
        with open(Path(folder) / MANIFEST_NAME, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _count_files(folder: Path) -> dict:
    counts = {}
    for split in ("Train", "Test"):
        per_class = []
        for label in range(10):
            class_folder = folder / split / str(label)
            try:
                per_class.append(sum(1 for e in os.scandir(class_folder) if e.name.endswith(".bin")))
            except OSError:
                per_class.append(0)
        counts[split.lower()] = per_class
    return counts


def _checksums(folder: Path) -> dict:
    """MD5 of every recording, keyed by its path relative to ``folder`` (``Train/3/00012.bin``)."""
    sums = {}
    for split in ("Train", "Test"):
        for path in sorted((folder / split).glob("*/*.bin")):
            sums[path.relative_to(folder).as_posix()] = hashlib.md5(path.read_bytes()).hexdigest()
    return sums


def _is_current(folder: Path, request: dict) -> bool:
    manifest = read_manifest(folder)
    if manifest is None or any(manifest.get(key) != value for key, value in request.items()):
        return False
    if manifest.get("counts") != _count_files(folder):
        return False
    expected = manifest.get("checksums")
    if not isinstance(expected, dict):
        return False
    found = _checksums(folder)
    if found != expected:
        damaged = sorted(name for name in set(found) | set(expected) if found.get(name) != expected.get(name))
        logger.warning("embedded dataset at %s: %d file(s) differ from the manifest's checksums (%s); "
                       "regenerating", folder, len(damaged), ", ".join(damaged[:5]))
        return False
    return True


@contextlib.contextmanager
def _exclusive_lock(path: Path):
    """Hold an exclusive advisory lock on ``path`` (no-op where ``fcntl`` is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: rely on the atomic rename alone
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _split_indices(labels: np.ndarray, test_fraction: float, rng: np.random.Generator,
                   max_per_class) -> tuple[np.ndarray, np.ndarray]:
    train, test = [], []
    for label in range(10):
        members = np.flatnonzero(labels == label)
        if max_per_class is not None:
            members = members[:max_per_class]
        members = rng.permutation(members)
        n = members.size
        n_test = int(round(test_fraction * n))
        if n >= 2:
            n_test = min(max(n_test, 1), n - 1)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _generate(folder: Path, request: dict, params: EmulatorParameters, progress: bool) -> dict:
    """Write every recording and then the manifest into ``folder`` (a fresh temporary folder)."""
    from sklearn.datasets import load_digits

    from ..progress import progress_bar

    started = time.perf_counter()
    digits = load_digits()
    images = digits.images
    labels = np.asarray(digits.target, dtype=np.int64)
    seed = request["seed"]
    split_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    train, test = _split_indices(labels, request["test_fraction"], split_rng, request["max_per_class"])
    jobs = [("Train", int(i)) for i in train] + [("Test", int(i)) for i in test]
    for split in ("Train", "Test"):
        for label in range(10):
            (folder / split / str(label)).mkdir(parents=True, exist_ok=True)
    with progress_bar(len(jobs), "embedded N-MNIST", enabled=progress) as bar:
        for start in range(0, len(jobs), _BATCH):
            batch = jobs[start:start + _BATCH]
            indices = [i for _, i in batch]
            rngs = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i))) for i in indices]
            recordings = emulate_batch(images[indices], rngs, params, value_range=DIGITS_VALUE_RANGE)
            for (split, i), events in zip(batch, recordings):
                (folder / split / str(labels[i]) / f"{i:05d}.bin").write_bytes(encode_nmnist(events))
            bar.update(len(batch))
    import sklearn

    from .. import __version__

    manifest = dict(request)
    manifest.update(
        format="N-MNIST .bin (5-byte events); Train/<digit>/<index>.bin, Test/<digit>/<index>.bin",
        counts=_count_files(folder),
        checksums=_checksums(folder),
        n_train=int(train.size),
        n_test=int(test.size),
        generation_seconds=round(time.perf_counter() - started, 3),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        sdsnn_bio_version=__version__,
        sklearn_version=sklearn.__version__,
    )
    with open(folder / MANIFEST_NAME, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")
    return manifest


def embedded_root(cache_dir=None, *, seed: int = EMBEDDED_SEED, params: EmulatorParameters | None = None,
                  test_fraction: float = TEST_FRACTION, max_per_class: int | None = None,
                  progress: bool = True) -> Path:
    """Folder of the embedded dataset, generated on first use (see the module docstring).

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Cache folder (default: :func:`default_cache_dir`).
    seed : int
        Seed of the split and of every recording's mismatch and noise.
    params : EmulatorParameters, optional
        Emulated camera (default: the calibrated defaults).
    test_fraction : float
        Fraction of each class in ``Test``, in (0, 1).
    max_per_class : int, optional
        Use only the first ``max_per_class`` digits of each class (quick tests); default all.
    progress : bool
        Show a progress bar while generating (only on a terminal).

    Returns
    -------
    pathlib.Path
        ``CACHE/embedded_nmnist``, holding ``Train/``, ``Test/`` and ``manifest.json``.
    """
    params = EmulatorParameters() if params is None else params
    if not isinstance(params, EmulatorParameters):
        raise ValueError(f"params: expected EmulatorParameters, got {type(params).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    if max_per_class is not None and (
        isinstance(max_per_class, bool) or not isinstance(max_per_class, (int, np.integer)) or max_per_class < 2
    ):
        raise ValueError(f"max_per_class: expected None or an integer >= 2, got {max_per_class!r}")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    final = cache / EMBEDDED_FOLDER
    request = _request(seed, params, test_fraction, max_per_class)
    if _is_current(final, request):
        return final
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"{cache}: cannot create the cache folder for the embedded dataset ({error})") from error
    with _exclusive_lock(cache / f"{EMBEDDED_FOLDER}.lock"):
        if _is_current(final, request):  # another process generated it while we waited
            return final
        # Under the lock, temporary and stale folders are leftovers of interrupted runs.
        for leftover in cache.glob(f".{EMBEDDED_FOLDER}.*"):
            shutil.rmtree(leftover, ignore_errors=True)
        reason = "absent" if read_manifest(final) is None else "stale (manifest differs from the request)"
        logger.info("generating the embedded dataset into %s (cache %s)", final, reason)
        building = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_FOLDER}.building-", dir=cache))
        building.chmod(0o755)  # mkdtemp makes it private (0700); the cache is an ordinary folder
        stale = None
        try:
            manifest = _generate(building, request, params, progress)
            if final.exists():
                stale = cache / f".{EMBEDDED_FOLDER}.stale-{uuid.uuid4().hex}"
                os.rename(final, stale)
            os.rename(building, final)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        finally:
            if stale is not None:
                shutil.rmtree(stale, ignore_errors=True)
        logger.info("embedded dataset: %d train and %d test recordings in %.1f s",
                    manifest["n_train"], manifest["n_test"], manifest["generation_seconds"])
    return final

"""N-MNIST datasets read from the original folder layout or the original zip archives.

Accepted layouts of a root folder (the split folder/archive name is matched case-insensitively):

* ``ROOT/Train/<digit>/*.bin`` and ``ROOT/Test/<digit>/*.bin`` (the extracted dataset), and
  optionally ``ROOT/Validation/<digit>/*.bin`` (split ``"validation"``, e.g. written by
  :mod:`~sdsnn_bio.data.convert`);
* ``ROOT/Train.zip`` and ``ROOT/Test.zip`` (and ``Validation.zip``) (the original archives, read
  without extracting), whose members are ``<prefix>/<digit>/<name>.bin`` (e.g.
  ``Train/0/00002.bin``; any leading folders are accepted, ``__MACOSX/`` and dot-files are ignored).

A split folder wrapping a single folder that holds the class folders (``Train/Train/0/...``) is
accepted as well. When both a folder and an archive exist, the folder is read. ``<digit>`` is the
label (0-9). Recordings are listed by class, then by file name.

Each recording is decoded by :func:`~sdsnn_bio.data.format.read_nmnist_file` (tonic's decoder) when
it is accessed. "First saccade only" keeps the events with ``t < 100 000`` us, the rule of
:class:`tonic.datasets.NMNIST` (``first_saccade_only``). Nothing is ever downloaded.
"""

from __future__ import annotations

import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from .format import (
    CLASSES,
    EVENT_BYTES,
    EVENT_DTYPE,
    SENSOR_SIZE,
    DataError,
    DataWarning,
    MissingDataError,
    decode_nmnist,
)

__all__ = [
    "FIRST_SACCADE_US",
    "MAX_RECORDING_BYTES",
    "SPLITS",
    "RecordingSource",
    "EventDataset",
    "find_recordings",
    "balanced_subset",
    "open_dataset",
]

#: End of the first saccade, in microseconds (tonic's ``first_saccade_only`` keeps ``t < 1e5``).
FIRST_SACCADE_US = 100_000
#: Largest recording read, in bytes (a zip member or a file): 16 MiB = 3.4 million events. A real
#: N-MNIST recording holds a few thousand events (the sample: 4325 events, 21 625 bytes); anything
#: this large is not a recording, and reading it would cost 6.4 times its size in decoded events.
MAX_RECORDING_BYTES = 16 * 2**20
#: Split names and the folder/archive stem that holds each.
SPLITS = {"train": "Train", "validation": "Validation", "test": "Test"}
_LAYOUT = (
    "expected ROOT/Train/<digit>/*.bin and ROOT/Test/<digit>/*.bin, or ROOT/Train.zip and ROOT/Test.zip"
)


@dataclass(frozen=True)
class RecordingSource:
    """Where one recording is stored.

    Attributes
    ----------
    path : str
        The ``.bin`` file, or the member name inside ``archive``.
    label : int
        Digit class 0-9 (the name of the folder holding the file).
    archive : str or None
        The zip archive holding ``path``, or None for a plain file.
    """

    path: str
    label: int
    archive: str | None = None

    def __str__(self) -> str:
        return self.path if self.archive is None else f"{self.archive}::{self.path}"


def _is_class_name(name: str) -> bool:
    return len(name) == 1 and name in "0123456789"


def _visible(name: str) -> bool:
    return not name.startswith(".") and name != "__MACOSX"


def _split_location(root: Path, split: str) -> tuple[Path | None, Path | None]:
    """The split's folder and archive under ``root`` (either may be None)."""
    stem = SPLITS[split].lower()
    folder = archive = None
    for entry in sorted(root.iterdir()):
        name = entry.name.lower()
        if name == stem and entry.is_dir():
            folder = entry
        elif name == stem + ".zip" and entry.is_file():
            archive = entry
    return folder, archive


def _scan_folder(folder: Path, root: Path) -> list[RecordingSource]:
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p.name))
    classes = [p for p in subfolders if _is_class_name(p.name)]
    if not classes and len(subfolders) == 1:
        # One wrapping folder (e.g. Train/Train/0/...): look inside it.
        inner = sorted(p for p in subfolders[0].iterdir() if p.is_dir() and _visible(p.name))
        if any(_is_class_name(p.name) for p in inner):
            return _scan_folder(subfolders[0], root)
    others = [p.name for p in subfolders if not _is_class_name(p.name)]
    if others:
        raise DataError(
            f"{folder}: expected class folders named 0-9 (holding .bin files), got folder(s) {others}"
        )
    sources = []
    for class_folder in classes:
        _check_inside(class_folder, root, "class folder")
        files = sorted(
            p for p in class_folder.iterdir()
            if p.is_file() and p.suffix.lower() == ".bin" and _visible(p.name)
        )
        for path in files:
            _check_inside(path, root, "recording")
        sources.extend(RecordingSource(str(p), int(class_folder.name)) for p in files)
    return sources


def _check_inside(path: Path, root: Path, what: str) -> None:
    """Refuse a symbolic link leading outside the data root (its name would become the label)."""
    if not path.is_symlink():
        return
    target = path.resolve()
    if not target.is_relative_to(root.resolve()):
        raise DataError(
            f"{path}: {what} is a symbolic link to {target}, outside the data root {root}; "
            "copy the data into the root (a link's name would otherwise label data it does not hold)"
        )


def _open_zip(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as error:
        raise DataError(f"{archive}: expected a readable zip archive of N-MNIST .bin files ({error})") from error
    except OSError as error:
        raise DataError(f"{archive}: could not open the zip archive ({error})") from error


def _scan_archive(archive: Path) -> list[RecordingSource]:
    with _open_zip(archive) as handle:
        names = handle.namelist()
    sources = []
    for name in names:
        if name.endswith("/"):
            continue
        member = PurePosixPath(name)
        if not all(_visible(part) for part in member.parts) or member.suffix.lower() != ".bin":
            continue
        parent = member.parent.name
        if not _is_class_name(parent):
            raise DataError(
                f"{archive}: expected members <folder>/<digit>/<name>.bin with <digit> in 0-9 "
                f"(e.g. {archive.stem}/0/00002.bin), got {name!r}"
            )
        sources.append(RecordingSource(name, int(parent), str(archive)))
    sources.sort(key=lambda s: (s.label, PurePosixPath(s.path).name, s.path))
    return sources


def find_recordings(root, split: str) -> list[RecordingSource]:
    """List the recordings of one split of an N-MNIST folder.

    Parameters
    ----------
    root : str or os.PathLike
        Folder holding ``Train/`` and ``Test/`` (or ``Train.zip`` and ``Test.zip``).
    split : {"train", "validation", "test"}

    Returns
    -------
    list of RecordingSource
        Sorted by label, then file name.

    Raises
    ------
    MissingDataError
        If ``root`` does not exist.
    DataError
        If the layout is not one of the accepted ones, a class folder is not a digit, or the split
        holds no ``.bin`` file.
    """
    split = _check_split(split)
    root = Path(root).expanduser()
    if not root.exists():
        raise MissingDataError(f"{root}: N-MNIST folder does not exist ({_LAYOUT})")
    if not root.is_dir():
        raise DataError(f"{root}: expected an N-MNIST folder, got a file ({_LAYOUT})")
    folder, archive = _split_location(root, split)
    if folder is not None:
        sources, where = _scan_folder(folder, root), folder
    elif archive is not None:
        sources, where = _scan_archive(archive), archive
    else:
        found = sorted(p.name for p in root.iterdir() if _visible(p.name))[:10]
        raise DataError(
            f"{root}: no {SPLITS[split]}/ folder or {SPLITS[split]}.zip archive for split {split!r} "
            f"({_LAYOUT}); found {found}"
        )
    if not sources:
        raise DataError(f"{where}: split {split!r} holds no .bin recording ({_LAYOUT})")
    missing = sorted(set(range(len(CLASSES))) - {s.label for s in sources})
    if missing:
        warnings.warn(
            f"{where}: split {split!r} holds no recording of class(es) {missing} (expected every digit 0-9); "
            "a model trained or tested on it never sees them",
            DataWarning,
            stacklevel=2,
        )
    return sources


def _check_split(split) -> str:
    if not isinstance(split, str) or split.lower() not in SPLITS:
        raise ValueError(f"split: expected one of {sorted(SPLITS)}, got {split!r}")
    return split.lower()


def balanced_subset(labels, n: int, rng) -> np.ndarray:
    """Indices of a class-balanced random subset of ``n`` samples.

    Every class gets ``n // n_classes`` samples and ``n % n_classes`` randomly chosen classes one
    more; a class with too few samples gives all it has and the shortfall is spread over the
    others. Within a class the samples are drawn without replacement.

    Parameters
    ----------
    labels : array_like of int
        Label of every sample.
    n : int
        Subset size, ``1 <= n <= len(labels)``.
    rng : numpy.random.Generator or int
        Random generator, or a seed for one.

    Returns
    -------
    ndarray of int64
        Sorted indices into ``labels``.
    """
    labels = np.asarray(labels)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= labels.size:
        raise ValueError(f"subset: expected an integer in [1, {labels.size}] (samples available), got {n!r}")
    if not isinstance(rng, np.random.Generator):
        if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or rng < 0:
            raise ValueError(f"seed: expected an integer >= 0 or a numpy.random.Generator, got {rng!r}")
        rng = np.random.default_rng(int(rng))
    classes = np.unique(labels)
    members = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    quota = {c: int(n) // classes.size for c in classes}
    for c in rng.permutation(classes)[: int(n) % classes.size]:
        quota[c] += 1
    taken = {c: min(quota[c], members[c].size) for c in classes}
    shortfall = int(n) - sum(taken.values())
    while shortfall > 0:
        spare = [c for c in rng.permutation(classes) if taken[c] < members[c].size]
        for c in spare[:shortfall]:
            taken[c] += 1
        shortfall = int(n) - sum(taken.values())
    chosen = np.concatenate([members[c][: taken[c]] for c in classes])
    return np.sort(chosen).astype(np.int64)


class EventDataset:
    """N-MNIST recordings with their labels, decoded on access (tonic-style dataset).

    Parameters
    ----------
    sources : sequence of RecordingSource
        The recordings, in order.
    root : str
        Folder the recordings come from (provenance).
    split : str
        ``"train"``, ``"validation"`` or ``"test"``.
    first_saccade : bool
        Keep only events with ``t < FIRST_SACCADE_US``.
    transform : callable, optional
        Applied to the events of every item (after the first-saccade cut), e.g.
        ``tonic.transforms.Denoise(filter_time=10000)`` or ``tonic.transforms.ToFrame(...)``.

    Attributes
    ----------
    sensor_size : tuple
        ``(34, 34, 2)``: width, height, polarities.
    dtype : numpy.dtype
        Event dtype (fields ``x, y, t, p``).
    ordering : str
        ``"xytp"``.
    classes : list of str
        Class names; the label is the index.
    files : list of str
        Every recording read, as a path or ``archive.zip::member``.
    targets : ndarray of int64
        Label of every recording.
    """

    sensor_size = SENSOR_SIZE
    dtype = EVENT_DTYPE
    ordering = "xytp"
    classes = list(CLASSES)

    def __init__(self, sources, *, root, split: str, first_saccade: bool = False, transform=None,
                 source: str | None = None) -> None:
        if transform is not None and not callable(transform):
            raise ValueError(f"transform: expected a callable (e.g. a tonic transform), got {transform!r}")
        self.sources = list(sources)
        self.root = str(root)
        self.split = split
        self.first_saccade = bool(first_saccade)
        self.transform = transform
        self.source = source if source is not None else self.root
        self.targets = np.asarray([s.label for s in self.sources], dtype=np.int64)
        self._archives: dict[str, zipfile.ZipFile] = {}

    @property
    def files(self) -> list[str]:
        """The recording files of the split, in sample order."""
        return [str(s) for s in self.sources]

    def __len__(self) -> int:
        return len(self.sources)

    def __repr__(self) -> str:
        return (
            f"EventDataset(source={self.source!r}, split={self.split!r}, n={len(self)}, "
            f"first_saccade={self.first_saccade}, transform={self.transform!r})"
        )

    def read(self, index: int) -> np.ndarray:
        """Events of recording ``index``, before the first-saccade cut and the transform."""
        source = self.sources[index]
        limit = MAX_RECORDING_BYTES
        too_large = (f"{source}: {{size}} bytes, more than the {limit} bytes ({limit // EVENT_BYTES} events) "
                     "accepted for one recording (real N-MNIST recordings hold a few thousand events): "
                     "not an N-MNIST recording")
        if source.archive is None:
            path = Path(source.path)
            try:
                with open(path, "rb") as handle:
                    data = handle.read(limit + 1)
            except FileNotFoundError:
                raise MissingDataError(f"{path}: recording listed in the dataset no longer exists") from None
            except OSError as error:
                raise DataError(f"{path}: could not read the N-MNIST .bin file ({error})") from error
            if len(data) > limit:
                raise DataError(too_large.format(size=f"at least {len(data)}"))
        else:
            handle = self._archives.get(source.archive)
            if handle is None:
                handle = self._archives[source.archive] = _open_zip(Path(source.archive))
            try:
                declared = handle.getinfo(source.path).file_size
                if declared > limit:
                    raise DataError(too_large.format(size=declared))
                # Never trust the declared size alone: read at most one byte past the limit.
                with handle.open(source.path) as member:
                    data = member.read(limit + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, OSError) as error:
                raise DataError(f"{source}: could not read the member from the zip archive ({error})") from error
            if len(data) > limit:
                raise DataError(too_large.format(size=f"at least {len(data)}"))
        return decode_nmnist(data, str(source), self.sensor_size)

    def __getitem__(self, index):
        """Return ``(events, label)`` of recording ``index``."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an integer, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} recordings")
        index = int(index) % n
        events = self.read(index)
        if self.first_saccade:
            events = events[events["t"] < FIRST_SACCADE_US]
        if self.transform is not None:
            events = self.transform(events)
        return events, int(self.targets[index])

    def close(self) -> None:
        """Close the zip archives opened for reading (they reopen on the next access)."""
        for handle in self._archives.values():
            handle.close()
        self._archives.clear()

    def __enter__(self) -> "EventDataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_archives"] = {}
        return state


def open_dataset(root, split: str = "train", *, subset: int | None = None, seed=0,
                 first_saccade: bool = False, transform=None, source: str | None = None) -> EventDataset:
    """Open one split of an N-MNIST folder (see the module docstring for the layouts).

    Parameters
    ----------
    root : str or os.PathLike
    split : {"train", "validation", "test"}
    subset : int, optional
        Keep a class-balanced random subset of this many recordings (:func:`balanced_subset`).
    seed : int or numpy.random.Generator
        Randomness of the subset.
    first_saccade : bool
        Keep only events with ``t < 100 000`` us.
    transform : callable, optional
        Applied to the events of every item.
    source : str, optional
        Description of where the data come from (default: ``root``).
    """
    split = _check_split(split)
    sources = find_recordings(root, split)
    if subset is not None:
        labels = [s.label for s in sources]
        sources = [sources[i] for i in balanced_subset(labels, subset, seed)]
    return EventDataset(sources, root=os.fspath(Path(root).expanduser()), split=split,
                        first_saccade=first_saccade, transform=transform, source=source)

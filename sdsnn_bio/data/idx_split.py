"""One IDX image/label pair split into train / validation / test IDX files (MNIST's layout).

MNIST's test images may be out of reach (this project withholds them on purpose), or a run needs a
validation split that is never trained on. :func:`split_idx` draws the split from ONE pair of IDX
files (e.g. MNIST's ``train-images-idx3-ubyte.gz`` and ``train-labels-idx1-ubyte.gz``) and writes
it in the layout :func:`sdsnn_bio.data.images.open_mnist` reads::

    OUTPUT/train-images-idx3-ubyte.gz        OUTPUT/train-labels-idx1-ubyte.gz
    OUTPUT/validation-images-idx3-ubyte.gz   OUTPUT/validation-labels-idx1-ubyte.gz  (validation > 0)
    OUTPUT/t10k-images-idx3-ubyte.gz         OUTPUT/t10k-labels-idx1-ubyte.gz        (test > 0)
    OUTPUT/provenance.json

Split
    :func:`sdsnn_bio.data.convert.stratified_split` with the counts in the order train,
    validation, test and the same seed: exactly the digits ``python -m sdsnn_bio.data emulate-idx``
    records into ``Train/``, ``Validation/`` and ``Test/`` for the same source, counts and seed, so
    a static-image run and an event-based run of the emulated recordings see the same digits. Every
    split keeps the source's order (indices sorted); the element types are kept.
Atomicity
    The files are written into a temporary folder beside ``OUTPUT``, which is renamed to
    ``OUTPUT`` once every file and the provenance exist: a reader never sees half a split. A rerun
    of the same request into a finished folder checks the files against the provenance's md5 and
    writes nothing; another request, or a non-empty folder without a provenance, is refused.
Provenance (``provenance.json``)
    md5, path, shape and dtype of both source files, seed, split sizes, the source indices of every
    split, the md5 of every file written, the command line, library versions.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ..files import atomic_open
from .convert import stratified_split
from .format import DataError
from .idx import file_md5, read_idx, write_idx

__all__ = ["IDX_SPLIT_PREFIXES", "SPLIT_PROVENANCE_NAME", "split_file_names", "split_idx"]

#: Split name -> file prefix (MNIST's ``train`` and ``t10k``; ``validation`` is this package's).
IDX_SPLIT_PREFIXES = {"train": "train", "validation": "validation", "test": "t10k"}
#: Provenance file of a split folder.
SPLIT_PROVENANCE_NAME = "provenance.json"
#: Version of the file names, split rule and provenance (bumped when the output would change).
IDX_SPLIT_VERSION = 1


def split_file_names(split: str, image_ndim: int = 3, *, compress: bool = True) -> tuple[str, str]:
    """Names of a split's images and labels files, e.g. ``("t10k-images-idx3-ubyte.gz", ...)``."""
    if split not in IDX_SPLIT_PREFIXES:
        raise ValueError(f"split: expected one of {list(IDX_SPLIT_PREFIXES)}, got {split!r}")
    suffix = ".gz" if compress else ""
    prefix = IDX_SPLIT_PREFIXES[split]
    return f"{prefix}-images-idx{image_ndim}-ubyte{suffix}", f"{prefix}-labels-idx1-ubyte{suffix}"


def _count(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def _read_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or min(images.shape) < 1:
        raise DataError(f"{images_path}: expected IDX images of shape (n, height, width), got shape {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{labels_path}: expected {images.shape[0]} integer labels (one per image of {images_path}), got "
            f"shape {labels.shape} dtype {labels.dtype}"
        )
    return images, labels


def _existing(folder: Path, request: dict) -> dict | None:
    """The provenance of a finished split of ``request`` in ``folder``; None if ``folder`` is free."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        raise DataError(f"{folder}: --output names an existing file, expected a folder")
    provenance_path = folder / SPLIT_PROVENANCE_NAME
    if not provenance_path.is_file():
        found = sorted(p.name for p in folder.iterdir())
        if not found:
            return None
        raise DataError(f"{folder}: output folder is not empty and holds no {SPLIT_PROVENANCE_NAME} (found "
                        f"{found[:5]}); choose an empty or new folder")
    try:
        provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
        earlier = provenance["request"]
        files = provenance["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{provenance_path}: expected the provenance of a split-idx folder (with 'request' and "
                        f"'files'), could not read it ({error}); delete the folder to start again") from error
    differing = sorted(k for k in set(earlier) | set(request) if earlier.get(k) != request.get(k))
    if differing:
        raise DataError(f"{folder}: holds a split of another request (differs in {', '.join(differing)}); "
                        "choose a new folder")
    for name, record in files.items():
        path = folder / name
        if not path.is_file() or file_md5(path) != record.get("md5"):
            raise DataError(f"{path}: missing or changed since the split was written (md5 differs from "
                            f"{provenance_path}); delete the folder and split again")
    return provenance


def split_idx(images_path, labels_path, output, *, train: int, validation: int = 0, test: int = 0,
              seed: int = 0, compress: bool = True, command: str | None = None) -> dict:
    """Split one IDX image/label pair into train / validation / test IDX files (module docstring).

    Parameters
    ----------
    images_path, labels_path : str or os.PathLike
        IDX files (gzip or not): images ``(n, height, width)``, integer labels ``(n,)``.
    output : str or os.PathLike
        Folder to create (or an empty one); it holds the split once this returns.
    train, validation, test : int
        Images per split (stratified by class, disjoint; sum at most ``n``; ``train >= 1``). A split
        of size 0 gets no files.
    seed : int
        Seed of the split (the ``--seed`` of ``emulate-idx`` that selects the same digits).
    compress : bool
        Gzip the files (``.gz`` names, as MNIST is distributed).
    command : str, optional
        Command line recorded in the provenance.

    Returns
    -------
    dict
        The provenance written to ``OUTPUT/provenance.json`` (``"already_present": True`` when a
        finished split of the same request was found and nothing was written).

    Raises
    ------
    ValueError
        Counts or seed that are not integers in range, or more images requested than the source has.
    DataError, MissingDataError
        Unreadable or mismatched source files; an output folder holding something else.
    """
    started = time.perf_counter()
    train = _count("train", train, 1)
    validation = _count("validation", validation, 0)
    test = _count("test", test, 0)
    seed = _count("seed", seed, 0)
    images, labels = _read_pair(images_path, labels_path)
    splits = stratified_split(labels.astype(np.int64), {"train": train, "validation": validation, "test": test},
                              seed)
    source = {
        "images": {"md5": file_md5(images_path), "shape": list(images.shape), "dtype": images.dtype.name},
        "labels": {"md5": file_md5(labels_path), "shape": list(labels.shape), "dtype": labels.dtype.name},
    }
    request = {
        "idx_split_version": IDX_SPLIT_VERSION,
        "selection": "sdsnn_bio.data.convert.stratified_split (order train, validation, test)",
        "seed": seed,
        "compress": bool(compress),
        "source": source,
        "split_sizes": {name: int(indices.size) for name, indices in splits.items()},
        "split_indices": {name: [int(i) for i in indices] for name, indices in splits.items()},
    }
    folder = Path(output).expanduser()
    earlier = _existing(folder, request)
    if earlier is not None:
        return {**earlier, "already_present": True}

    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.parent / f".{folder.name}.{secrets.token_hex(6)}.tmp"
    try:
        temporary.mkdir()
        files = {}
        for name, indices in splits.items():
            if not indices.size:
                continue
            for kind, array, file_name in zip(("images", "labels"), (images[indices], labels[indices]),
                                              split_file_names(name, images.ndim, compress=compress)):
                path = write_idx(temporary / file_name, array, compress=compress)
                files[file_name] = {"split": name, "kind": kind, "shape": list(array.shape), "md5": file_md5(path)}
                if kind == "labels":
                    classes, counts = np.unique(array, return_counts=True)
                    files[file_name]["class_counts"] = {str(int(c)): int(k) for c, k in zip(classes, counts)}
        provenance = {
            "request": request,
            "source_paths": {"images": str(Path(images_path).resolve()), "labels": str(Path(labels_path).resolve())},
            "files": files,
            "command": command,
            "wall_seconds": round(time.perf_counter() - started, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": _versions(),
        }
        with atomic_open(temporary / SPLIT_PROVENANCE_NAME, "w", encoding="utf-8") as handle:
            json.dump(provenance, handle, indent=1)
            handle.write("\n")
        if folder.is_dir():
            folder.rmdir()  # empty (checked above); rename cannot replace a folder on every platform
        os.replace(temporary, folder)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(temporary)
        raise
    return provenance


def _versions() -> dict:
    from .. import __version__

    return {"sdsnn_bio": __version__, "numpy": np.__version__, "python": sys.version.split()[0]}

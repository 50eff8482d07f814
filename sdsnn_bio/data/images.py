"""Static images (MNIST, CIFAR-10) from a local folder, rate or direct coded.

Static images from a local folder — MNIST's IDX files and CIFAR-10's python batches — and their
encodings: rate coding into input spikes, or direct (analog) input.

Nothing is downloaded; the folder must already hold

**MNIST** (LeCun et al.; ``ROOT``, ``ROOT/raw`` or ``ROOT/MNIST/raw``, torchvision's place)::

    train-images-idx3-ubyte   train-labels-idx1-ubyte     (60 000 images 28 x 28, uint8)
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte      (10 000)

each possibly gzip-compressed (``.gz``, as distributed) and with ``.idx`` instead of ``-idx`` in the
name (``train-images.idx3-ubyte``); read by :func:`sdsnn_bio.data.idx.read_idx`. A folder written by
``python -m sdsnn_bio.data split-idx`` (:mod:`sdsnn_bio.data.idx_split`: train / validation / test
carved from one IDX pair, e.g. MNIST's training images) also holds the ``validation`` split::

    validation-images-idx3-ubyte   validation-labels-idx1-ubyte

**CIFAR-10** (Krizhevsky 2009, "python version"; ``ROOT`` or ``ROOT/cifar-10-batches-py``)::

    data_batch_1 ... data_batch_5    training batches
    test_batch                       test batch

each a pickled dict with ``b"data"``, a uint8 array ``(n, 3072)`` (1024 red, 1024 green, 1024 blue
values of a 32 x 32 image, rows top to bottom), and ``b"labels"``, ``n`` classes 0-9. The batches
are unpickled by a restricted unpickler that only rebuilds NumPy arrays, lists, dicts, strings and
numbers (a pickle can run arbitrary code; these files come from outside).

An item is ``(image, label)`` with ``image`` a float array ``(height, width, channels)`` of
intensities ``value / 255`` in ``[0, 1]``.

Rate coding (``encoding = "poisson"``)
    The encoding of the released SD-SNN MNIST script (BrainCog's rate encoder): at every time step
    ``k`` channel ``c`` spikes when a uniform draw ``u[k, c] < intensity[c]``, i.e. a Bernoulli
    process of probability ``intensity`` per step — a Poisson process of rate ``intensity / dt``
    sampled on the simulation grid, which is what Brian2's ``PoissonGroup`` draws per step. The
    draws come from the sample's own ``numpy.random.Generator`` (seeded from the run seed, the split
    and the sample's index, :func:`sdsnn_bio.data.registry.encode_split`), once, when the data are
    prepared: the same spikes reach the training kernel and the Brian2 ``SpikeGeneratorGroup`` (a
    ``PoissonGroup`` would draw from Brian2's own generator and could not match the kernel). A
    sample keeps its spikes over epochs (the released script redraws them at every presentation).
    Channel ``c = (ch * H + y) * W + x`` for colour channel ``ch`` (MNIST has one).

Direct coding (``encoding = "direct"``)
    The encoding of the released SD-SNN CIFAR-10 script (BrainCog's ``encode_type='direct'``):
    no spikes; the intensities themselves, flattened in the same channel order, are the input of
    the first layer at every time step, a constant analog drive ``J_t = W^T x``
    (:func:`encode_direct`, :mod:`sdsnn_bio.data.analog`). In Brian2 the input is a ``NeuronGroup``
    holding ``x`` per channel (:class:`~sdsnn_bio.model.SpikingNetwork`); in the training kernel the
    first projection's current is ``x @ W`` and its gradient ``x^T sum_t dL/dJ_t``. The intensities
    are ``value / 255`` in ``[0, 1]``; BrainCog's CIFAR-10 loader further standardises each colour
    channel (mean and standard deviation), which is not done here.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from .format import CLASSES as MNIST_CLASSES
from .format import DataError, MissingDataError
from .idx import read_idx
from .nmnist import balanced_subset

__all__ = [
    "MNIST_CLASSES",
    "CIFAR10_CLASSES",
    "ImageDataset",
    "find_mnist_files",
    "open_mnist",
    "read_cifar10_batch",
    "open_cifar10",
    "encode_poisson",
    "encode_direct",
    "image_channels",
]

#: CIFAR-10 class names (``batches.meta``, as ``torchvision.datasets.CIFAR10.classes``).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_MNIST_PREFIX = {"train": "train", "validation": "validation", "test": "t10k"}
_MNIST_LAYOUT = ("expected train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                 "t10k-labels-idx1-ubyte (optionally .gz) in ROOT, ROOT/raw or ROOT/MNIST/raw")
_MNIST_VALIDATION_LAYOUT = ("expected validation-images-idx3-ubyte and validation-labels-idx1-ubyte "
                            "(optionally .gz) beside the training files; a folder with a validation split is "
                            "written by `python -m sdsnn_bio.data split-idx` (docs/datasets.md), or use "
                            "data.validation_split = \"fraction\"")
_CIFAR_BATCHES = {"train": tuple(f"data_batch_{k}" for k in range(1, 6)), "test": ("test_batch",)}
_CIFAR_LAYOUT = "expected data_batch_1 ... data_batch_5 and test_batch in ROOT or ROOT/cifar-10-batches-py"


def _check_split(split, accepted=("train", "test")) -> str:
    if not isinstance(split, str) or split.lower() not in accepted:
        raise ValueError(f"split: expected one of {list(accepted)}, got {split!r}")
    return split.lower()


class ImageDataset:
    """Images with their labels (tonic-style dataset of static images).

    Parameters
    ----------
    images : ndarray of uint8, shape (n, height, width, channels)
    targets : ndarray of int, shape (n,)
    classes : sequence of str
    source : str
        Provenance text.
    split : str

    Attributes
    ----------
    image_shape : (int, int, int)
        ``(height, width, channels)``.
    """

    def __init__(self, images, targets, *, classes, source: str, split: str) -> None:
        self.images = np.asarray(images)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.classes = list(classes)
        self.source = source
        self.split = split
        self.image_shape = tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return int(self.targets.size)

    def __repr__(self) -> str:
        return f"ImageDataset(source={self.source!r}, split={self.split!r}, n={len(self)}, shape={self.image_shape})"

    def __getitem__(self, index):
        """Return ``(image, label)``: intensities ``(height, width, channels)`` in ``[0, 1]``."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an integer, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} images")
        return self.images[int(index)].astype(np.float64) / 255.0, int(self.targets[int(index)])


def _subset(dataset: ImageDataset, subset, seed) -> ImageDataset:
    if subset is None:
        return dataset
    chosen = balanced_subset(dataset.targets, subset, seed)
    return ImageDataset(dataset.images[chosen], dataset.targets[chosen], classes=dataset.classes,
                        source=dataset.source, split=dataset.split)


def _check_labels(labels, n_images: int, n_classes: int, where) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size != n_images:
        raise DataError(f"{where}: expected {n_images} labels (one per image), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: expected integer labels, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{where}: expected labels in 0-{n_classes - 1}, got values in "
                        f"[{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


# ------------------------------------------------------------------------------------ MNIST
def _mnist_file(folder: Path, prefix: str, kind: str) -> Path | None:
    for separator in ("-", "."):
        for suffix in ("", ".gz"):
            path = folder / f"{prefix}-{kind}{separator}idx{3 if kind == 'images' else 1}-ubyte{suffix}"
            if path.is_file():
                return path
    return None


def find_mnist_files(root, split: str) -> tuple[Path, Path]:
    """The images and labels IDX files of one MNIST split (see the module docstring for names).

    Raises
    ------
    MissingDataError
        ``root`` does not exist, or no folder holds the split's two files.
    """
    split = _check_split(split, tuple(_MNIST_PREFIX))
    layout = _MNIST_VALIDATION_LAYOUT if split == "validation" else _MNIST_LAYOUT
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MissingDataError(f"{root}: MNIST folder does not exist ({_MNIST_LAYOUT})")
    prefix = _MNIST_PREFIX[split]
    for folder in (root, root / "raw", root / "MNIST" / "raw"):
        images, labels = _mnist_file(folder, prefix, "images"), _mnist_file(folder, prefix, "labels")
        if images is not None and labels is not None:
            return images, labels
        if images is not None or labels is not None:
            have, lack, dims = ("images", "labels", 1) if labels is None else ("labels", "images", 3)
            raise MissingDataError(f"{folder}: holds the {split} {have} but no {prefix}-{lack}-idx{dims}-ubyte"
                                   f"[.gz] ({layout})")
    found = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))[:10]
    raise MissingDataError(f"{root}: no {prefix}-images/{prefix}-labels IDX files for split {split!r} "
                           f"({layout}); found {found}")


def open_mnist(root, split: str = "train", *, subset: int | None = None, seed=0) -> ImageDataset:
    """Open one split of a local MNIST folder.

    Parameters
    ----------
    root : str or os.PathLike
    split : {"train", "validation", "test"}
        ``"validation"`` needs the ``validation-*`` files of a folder written by ``split-idx``.
    subset : int, optional
        Class-balanced random subset of this many images.
    seed : int or numpy.random.Generator
        Randomness of the subset.

    Raises
    ------
    MissingDataError, DataError
        Missing files; files that are not IDX, images that are not ``(n, 28, 28)`` uint8, labels
        that do not match the images in number or lie outside 0-9.
    """
    if not root:
        raise MissingDataError(f"MNIST is read from a local folder and never downloaded ({_MNIST_LAYOUT})")
    images_path, labels_path = find_mnist_files(root, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(f"{images_path}: expected MNIST images (n, 28, 28) of uint8, got shape {images.shape} "
                        f"of {images.dtype}")
    labels = _check_labels(labels, images.shape[0], len(MNIST_CLASSES), labels_path)
    dataset = ImageDataset(images[..., None], labels, classes=MNIST_CLASSES,
                           source=f"MNIST at {Path(images_path).parent}", split=split.lower())
    return _subset(dataset, subset, seed)


# ------------------------------------------------------------------------------------ CIFAR-10
class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds NumPy arrays and plain containers only (no other class can be instantiated)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how pickle protocol 2 stores bytes under Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to rebuild {module}.{name} (only NumPy arrays are expected)")


def read_cifar10_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch.

    Returns
    -------
    images : ndarray of uint8, shape (n, 32, 32, 3)
        ``(height, width, RGB)``.
    labels : ndarray of int64, shape (n,)

    Raises
    ------
    MissingDataError
        The file does not exist.
    DataError
        Not a pickle of NumPy data, not a dict with ``b"data"`` and ``b"labels"``, data that are not
        ``(n, 3072)`` uint8, or labels that do not match.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: expected a CIFAR-10 python batch, but no such file exists")
    try:
        raw = path.read_bytes()
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except OSError as error:
        raise DataError(f"{path}: could not read the CIFAR-10 batch ({error})") from error
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            ImportError) as error:
        raise DataError(f"{path}: expected a CIFAR-10 python batch (a pickled dict of NumPy data), could not "
                        f"unpickle it ({error})") from error
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected a pickled dict with b'data' and b'labels', got {type(batch).__name__}")
    keys = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    missing = [k for k in ("data", "labels") if k not in keys]
    if missing:
        raise DataError(f"{path}: expected the keys b'data' and b'labels', missing {missing} "
                        f"(got {sorted(map(str, keys))})")
    data = keys["data"]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: expected b'data' a uint8 array (n, 3072), got {type(data).__name__} "
                        f"of shape {shape} and dtype {getattr(data, 'dtype', None)}")
    labels = _check_labels(np.asarray(keys["labels"]), data.shape[0], len(CIFAR10_CLASSES), path)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def open_cifar10(root, split: str = "train", *, subset: int | None = None, seed=0) -> ImageDataset:
    """Open one split of a local CIFAR-10 folder (python batches; see the module docstring).

    Parameters are those of :func:`open_mnist`.
    """
    split = _check_split(split)
    if not root:
        raise MissingDataError(f"CIFAR-10 is read from a local folder and never downloaded ({_CIFAR_LAYOUT})")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MissingDataError(f"{root}: CIFAR-10 folder does not exist ({_CIFAR_LAYOUT})")
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = _CIFAR_BATCHES[split]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise MissingDataError(f"{folder}: missing {missing} for split {split!r} ({_CIFAR_LAYOUT})")
    parts = [read_cifar10_batch(folder / name) for name in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    dataset = ImageDataset(images, labels, classes=CIFAR10_CLASSES, source=f"CIFAR-10 at {folder}", split=split)
    return _subset(dataset, subset, seed)


# ------------------------------------------------------------------------------------ encoding
def image_channels(image, shape) -> np.ndarray:
    """Intensities of an image, flattened in input-channel order ``c = (ch * H + y) * W + x``.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        Intensities in ``[0, 1]``.
    shape : (int, int, int)
        The input shape ``(W, H, C)`` it must have.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[..., None]
    width, height, channels = (int(v) for v in shape)
    if image.shape != (height, width, channels):
        raise ValueError(f"image: expected shape (height, width, channels) = {(height, width, channels)}, "
                         f"got {image.shape}")
    if image.size and (not np.all(np.isfinite(image)) or image.min() < 0 or image.max() > 1):
        raise ValueError("image: expected intensities in [0, 1]")
    return image.transpose(2, 0, 1).reshape(-1)


def _check_n_steps(n_steps) -> int:
    """``n_steps`` of an encoding as an int (ValueError naming it unless it is a positive integer)."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps: expected a positive integer, got {n_steps!r}")
    return int(n_steps)


def encode_poisson(image, *, shape, dt=None, n_steps: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Rate coding: channel ``c`` spikes at step ``k`` when ``u[k, c] < intensity[c]`` (see module docstring).

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        Intensities in ``[0, 1]``.
    shape : (int, int, int)
        Input shape ``(W, H, C)``.
    dt : brian2.Quantity, optional
        Unused: the spike probability per step is the intensity whatever the step.
    n_steps : int
        Time steps.
    rng : numpy.random.Generator
        Source of the uniform draws ``u`` (shape ``(n_steps, W*H*C)``, drawn in one call).

    Returns
    -------
    channels, steps : ndarray of int64
        One entry per spike, sorted by step then channel.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {rng!r}")
    n_steps = _check_n_steps(n_steps)
    intensity = image_channels(image, shape)
    fires = rng.random((n_steps, intensity.size)) < intensity
    steps, channels = np.nonzero(fires)
    return channels.astype(np.int64), steps.astype(np.int64)


def encode_direct(image, *, shape, dt=None, n_steps: int, rng=None) -> np.ndarray:
    """Direct coding: the image's intensities as the analog input of every step (module docstring).

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        Intensities in ``[0, 1]``.
    shape : (int, int, int)
        Input shape ``(W, H, C)``.
    dt : brian2.Quantity, optional
        Unused: the input is the same at every step whatever the step.
    n_steps : int
        Time steps (checked; the same vector is presented at each of them).
    rng : numpy.random.Generator, optional
        Unused (the encoding is deterministic).

    Returns
    -------
    ndarray of float64, shape (W*H*C,)
        Intensity of every input channel ``c = (ch * H + y) * W + x`` (dimensionless; it multiplies
        the weights, which are in units of the normalised potential).
    """
    _check_n_steps(n_steps)
    return image_channels(image, shape)

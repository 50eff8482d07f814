"""Datasets as descriptors, and the encodings of their samples.

Datasets as descriptors: one small frozen record per dataset, and the encodings that turn its
samples into input spikes.

A :class:`DatasetDescriptor` holds the facts the rest of the package needs about a dataset — its
name (the ``[data] dataset`` configuration value), its native input shape, its classes, where its
reader lives and which encodings it accepts (the first is the default). The network's input and
output sizes, the figures' pixel maps and the results' description all come from it:

    ``n_input  = W * H * C``   (channel ``c = (ch * H + y) * W + x``, :mod:`.encoding`)
    ``n_output = len(classes)``

where ``(W, H, C)`` is the input shape: an event sensor's ``(width, height, polarities)``, possibly
spatially down-sampled (``[data] input_size``), or an image's ``(width, height, colour channels)``.

An :class:`Encoding` turns one sample into spikes ``(channels, steps)`` on the simulation time grid,
or, for an analog encoding (``"direct"``), into one vector of intensities ``(n_input,)`` presented at
every step (:mod:`.analog`); every encoding function has the signature
``encode(sample, *, shape, dt, n_steps, rng)``.

Adding a dataset (checklist)
----------------------------
1. Write ONE file under ``sdsnn_bio/data/`` with the reader: a function
   ``open_<name>(root, split, *, subset=None, seed=0, **options)`` returning an object with
   ``len(dataset)`` and ``dataset[i] -> (sample, label)`` (events: a structured array with fields
   ``x, y, t, p``, ``t`` in microseconds; images: an array ``(H, W)`` or ``(H, W, C)`` of
   intensities in ``[0, 1]``) and a ``source`` attribute (provenance text). It never downloads;
   every malformed input raises :class:`~sdsnn_bio.data.format.DataError` naming the file and what
   was expected.
2. Add ONE line to :data:`DATASETS` below: ``DatasetDescriptor(name, title, kind, shape, classes,
   reader="sdsnn_bio.data.<file>:open_<name>", encodings=(...))`` (the class names are a tuple in
   the reader's file, imported at the top of this module).
3. Tests in ``tests/test_<file>.py``: the reader on small files the test writes in every accepted
   layout, one test per malformed input checking the message, and a tiny ``sdsnn-bio run`` on
   generated files (see ``tests/test_images.py`` and ``tests/test_dvs_gesture.py``).
4. Document the folder layout in ``docs/data.md``; ``[data] dataset = "<name>"`` then works in
   every configuration, and ``n_input`` / ``n_output`` follow.

Adding an encoding: a function with the signature above (in :mod:`.encoding` for events, in the
module of its sample kind otherwise), one line in :data:`ENCODINGS`, its name in the ``encodings``
of the datasets that accept it, and a test that it produces the spikes it documents. An analog
encoding (``analog=True``, returning intensities) needs nothing else: the learner and the Brian2
network take intensity vectors wherever they take spikes (``tests/test_direct.py``).

Nothing here imports a reader until a dataset is opened, and nothing is ever downloaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from .analog import IntensitySamples
from .binned import BinnedSamplesBuilder, require_spikes
from .dvs_gesture import CLASSES as GESTURE_CLASSES
from .format import CLASSES as NMNIST_CLASSES
from .format import DataError
from .images import CIFAR10_CLASSES, MNIST_CLASSES

__all__ = [
    "DatasetDescriptor",
    "Encoding",
    "DATASETS",
    "ENCODINGS",
    "KINDS",
    "get_dataset",
    "dataset_names",
    "encode_split",
    "input_shape_of_config",
]

#: Sample kinds: event recordings (``x, y, t, p``) or static images.
KINDS = ("events", "images")


def _load(path: str):
    """``"package.module:attribute"`` -> the attribute (imported on first use only)."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _positive_ints(name: str, values, length: int) -> tuple[int, ...]:
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != length or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise ValueError(f"{name}: expected {length} positive integers, got {values!r}")
    return tuple(int(v) for v in values)


@dataclass(frozen=True)
class Encoding:
    """How one sample becomes input spikes.

    Parameters
    ----------
    name : str
        The ``[data] encoding`` value.
    kind : {"events", "images"}
        The sample kind it accepts.
    function : str
        ``"module:function"`` with the signature ``encode(sample, *, shape, dt, n_steps, rng)``
        returning ``(channels, steps)`` integer arrays (one spike per channel and step at most).
    stochastic : bool
        Whether it draws from ``rng`` (then every sample gets its own generator, seeded from the
        run seed, the split and the sample's index, so the spikes do not depend on loading order).
    description : str
        One line for the documentation and ``sdsnn-bio info``.
    analog : bool
        The function returns a float vector ``(n_input,)`` of intensities, presented as a constant
        analog input at every step, instead of spikes (:mod:`.analog`; default False).
    """

    name: str
    kind: str
    function: str
    stochastic: bool
    description: str
    analog: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Encoding.kind: expected one of {KINDS}, got {self.kind!r}")

    def load(self):
        """The encoding function."""
        return _load(self.function)


@dataclass(frozen=True)
class DatasetDescriptor:
    """The facts about one dataset (see the module docstring for the checklist).

    Parameters
    ----------
    name : str
        The ``[data] dataset`` value.
    title : str
        Human-readable name.
    kind : {"events", "images"}
        Event recordings or static images.
    shape : (int, int, int)
        Native input shape ``(width, height, channels)``: polarities of an event sensor, colour
        channels of an image.
    classes : tuple of str
        Class names; a label is an index into it.
    reader : str
        ``"module:function"``: ``open(root, split, *, subset, seed, **options) -> dataset``.
    encodings : tuple of str
        Names in :data:`ENCODINGS` this dataset accepts; the first is the default.
    options : tuple of str
        ``[data]`` keys passed on to the reader (e.g. ``first_saccade``).
    default_input_size : (int, int) or None
        ``(width, height)`` events are spatially down-sampled to when ``[data] input_size`` is
        empty; None keeps the native size.
    needs_root : bool
        The reader needs a folder (``[data] root``); False when it has an offline default.
    layout : str
        The folder layout(s) the reader accepts, for error messages and ``sdsnn-bio info``.
    splits : tuple of str
        Splits the reader can open (``"validation"`` when the folder may hold its own, which
        ``[data] validation_split = "folder"`` requires).
    """

    name: str
    title: str
    kind: str
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    reader: str
    encodings: tuple[str, ...]
    options: tuple[str, ...] = ()
    default_input_size: tuple[int, int] | None = None
    needs_root: bool = True
    layout: str = field(default="")
    splits: tuple[str, ...] = ("train", "test")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"DatasetDescriptor.kind: expected one of {KINDS}, got {self.kind!r}")
        object.__setattr__(self, "shape", _positive_ints("DatasetDescriptor.shape", self.shape, 3))
        object.__setattr__(self, "classes", tuple(self.classes))
        if len(self.classes) < 2:
            raise ValueError(f"DatasetDescriptor.classes: expected at least 2 classes, got {self.classes!r}")
        if not self.encodings:
            raise ValueError("DatasetDescriptor.encodings: expected at least one encoding")
        object.__setattr__(self, "encodings", tuple(self.encodings))
        if self.default_input_size is not None:
            object.__setattr__(self, "default_input_size", self._checked_size(self.default_input_size))

    # ------------------------------------------------------------------ sizes
    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def default_encoding(self) -> str:
        """The encoding used when ``data.encoding`` is not set (the first listed)."""
        return self.encodings[0]

    def _checked_size(self, input_size, name: str = "data.input_size") -> tuple[int, int]:
        size = _positive_ints(name, input_size, 2)
        width, height, _ = self.shape
        if size[0] > width or size[1] > height:
            raise ValueError(
                f"{name}: expected a (width, height) at most the native {width}x{height} of "
                f"{self.name}, got {size[0]}x{size[1]}"
            )
        return size

    def input_size(self, input_size=None) -> tuple[int, int]:
        """``(width, height)`` the samples are presented at (down-sampled events or native)."""
        if input_size is not None and len(tuple(input_size)):
            if self.kind != "events":
                raise ValueError(
                    f"data.input_size: spatial down-sampling applies to event datasets; {self.name} "
                    f"holds {self.kind} of native size {self.shape[0]}x{self.shape[1]} (leave it empty)"
                )
            return self._checked_size(input_size)
        if self.default_input_size is not None:
            return self.default_input_size
        return self.shape[0], self.shape[1]

    def input_shape(self, input_size=None) -> tuple[int, int, int]:
        """``(width, height, channels)`` of the network input."""
        width, height = self.input_size(input_size)
        return width, height, self.shape[2]

    def n_input(self, input_size=None) -> int:
        """Input channels of the network: ``W * H * C`` of :meth:`input_shape`."""
        width, height, channels = self.input_shape(input_size)
        return width * height * channels

    # ------------------------------------------------------------------ reading
    def encoding(self, name: str = "") -> Encoding:
        """The :class:`Encoding` called ``name`` ("" = the default), if this dataset accepts it."""
        name = name or self.default_encoding
        if name not in self.encodings:
            raise ValueError(
                f"data.encoding: {self.name} accepts {list(self.encodings)} (default "
                f"{self.default_encoding!r}), got {name!r}"
            )
        return ENCODINGS[name]

    def open(self, root, split: str, *, subset: int | None = None, seed=0, **options):
        """Open one split with the reader (``options`` not listed in :attr:`options` are dropped)."""
        if self.needs_root and not root:
            raise DataError(
                f"data.root: {self.title} is read from a local folder and never downloaded; set "
                f"data.root (or --data) to a folder holding {self.layout or 'the dataset'}"
            )
        if split not in self.splits:
            raise ValueError(f"split: {self.title} has the splits {list(self.splits)}, got {split!r}")
        reader = _load(self.reader)
        kept = {key: value for key, value in options.items() if key in self.options}
        return reader(root or None, split, subset=subset, seed=seed, **kept)


#: Every encoding, by name.
ENCODINGS: dict[str, Encoding] = {e.name: e for e in (
    Encoding("events", "events", "sdsnn_bio.data.encoding:encode_events", False,
             "event at time t -> a spike at step floor(t / dt); events after n_steps * dt are dropped"),
    Encoding("frames", "events", "sdsnn_bio.data.encoding:encode_frames", False,
             "the recording cut into n_steps equal time bins (tonic ToFrame); a spike where a bin holds an event"),
    Encoding("poisson", "images", "sdsnn_bio.data.images:encode_poisson", True,
             "rate coding: a spike at every step with probability = intensity in [0, 1] (Bernoulli per step)"),
    Encoding("direct", "images", "sdsnn_bio.data.images:encode_direct", False,
             "direct coding: the intensities in [0, 1] as a constant analog input of the first layer at every step",
             analog=True),
)}

#: Every dataset, by name (one line each; see the checklist in the module docstring).
DATASETS: dict[str, DatasetDescriptor] = {d.name: d for d in (
    DatasetDescriptor(
        "nmnist", "N-MNIST", "events", (34, 34, 2), NMNIST_CLASSES, "sdsnn_bio.data:load_dataset",
        ("events", "frames"), options=("first_saccade", "cache_dir"), needs_root=False,
        splits=("train", "validation", "test"),
        layout="Train/<digit>/*.bin and Test/<digit>/*.bin, or Train.zip and Test.zip (empty root: "
               "the embedded offline dataset)"),
    DatasetDescriptor(
        "dvs_gesture", "DVS-Gesture", "events", (128, 128, 2), GESTURE_CLASSES,
        "sdsnn_bio.data.dvs_gesture:open_dvs_gesture", ("frames", "events"), default_input_size=(32, 32),
        layout="the original release (trials_to_train.txt, trials_to_test.txt, user*.aedat with "
               "user*_labels.csv) or tonic's ibmGestureTrain/ and ibmGestureTest/"),
    DatasetDescriptor(
        "mnist", "MNIST", "images", (28, 28, 1), MNIST_CLASSES, "sdsnn_bio.data.images:open_mnist",
        ("poisson", "direct"), splits=("train", "validation", "test"),
        layout="train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
               "t10k-labels-idx1-ubyte (optionally .gz; validation-images/-labels too in a folder written "
               "by `python -m sdsnn_bio.data split-idx`)"),
    DatasetDescriptor(
        "cifar10", "CIFAR-10", "images", (32, 32, 3), CIFAR10_CLASSES, "sdsnn_bio.data.images:open_cifar10",
        ("poisson", "direct"), layout="the python batches data_batch_1 ... data_batch_5 and test_batch"),
)}


def dataset_names() -> list[str]:
    """Names accepted by ``[data] dataset``."""
    return list(DATASETS)


def get_dataset(name: str) -> DatasetDescriptor:
    """The descriptor of dataset ``name``; a ``ValueError`` lists the known names otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"data.dataset: expected one of {dataset_names()}, got {name!r}") from None


def input_shape_of_config(config: dict) -> tuple[int, int, int]:
    """Input shape recorded in a results file's configuration echo (``results["config"]``).

    Results written before datasets had descriptors carry no ``dataset`` key: they are N-MNIST.
    """
    data = (config or {}).get("data") or {}
    descriptor = get_dataset(data.get("dataset", "nmnist"))
    return descriptor.input_shape(data.get("input_size") or None)


def encode_split(descriptor: DatasetDescriptor, split: str, *, root=None, subset: int | None = None,
                 seed: int = 0, encoding: str = "", input_size=None, dt, n_steps: int,
                 options: dict | None = None) -> tuple[list, np.ndarray, str]:
    """Read one split and encode every sample as input spikes on the time grid.

    Parameters
    ----------
    descriptor : DatasetDescriptor
    split : {"train", "test"}
    root : str or os.PathLike, optional
        Dataset folder (None or "" for a dataset with an offline default).
    subset : int, optional
        Class-balanced subset size (None = all), drawn with ``seed``.
    seed : int
        Run seed: chooses the subset and seeds stochastic encodings.
    encoding : str
        Name in :data:`ENCODINGS` ("" = the dataset's default).
    input_size : (int, int), optional
        Event datasets: ``(width, height)`` to down-sample to with ``tonic.transforms.Downsample``.
    dt : brian2.Quantity
        Simulation time step.
    n_steps : int
        Steps per sample.
    options : dict, optional
        Reader options (only those the descriptor lists are passed on).

    Returns
    -------
    samples : BinnedSamples or IntensitySamples
        A sequence of ``(channels, steps)`` int64 pairs, stored compactly; for an analog encoding
        (``"direct"``) an :class:`~.analog.IntensitySamples` of ``(n_input,)`` intensity vectors.
    labels : ndarray of int64
    source : str
        Provenance of the samples (the reader's ``source``).

    Raises
    ------
    DataError
        If the split has samples but not one spike among them (analog: not one non-zero intensity).
    """
    chosen = descriptor.encoding(encoding)
    encode = chosen.load()
    shape = descriptor.input_shape(input_size)
    dataset = descriptor.open(root, split, subset=subset, seed=seed, **(options or {}))
    downsample = None
    if descriptor.kind == "events" and shape[:2] != descriptor.shape[:2]:
        from tonic.transforms import Downsample

        downsample = Downsample(sensor_size=descriptor.shape, target_size=shape[:2])
    split_key = {"train": 0, "test": 1}.get(split, 2)
    # Compact storage (sdsnn_bio.data.binned): 2 bytes per spike instead of two int64 arrays;
    # analog encodings: one float32 row of intensities per sample (sdsnn_bio.data.analog).
    builder = BinnedSamplesBuilder(n_steps, int(np.prod(shape)))
    rows = np.zeros((len(dataset), int(np.prod(shape))), dtype=np.float32) if chosen.analog else None
    labels = np.empty(len(dataset), dtype=np.int64)
    for index in range(len(dataset)):
        sample, label = dataset[index]
        if downsample is not None:
            sample = downsample(sample)
        rng = np.random.default_rng([int(seed), split_key, index]) if chosen.stochastic else None
        encoded = encode(sample, shape=shape, dt=dt, n_steps=n_steps, rng=rng)
        if chosen.analog:
            rows[index] = encoded
        else:
            builder.append(*encoded)
        labels[index] = int(label)
    samples = IntensitySamples(rows, n_steps) if chosen.analog else builder.finish()
    source = str(getattr(dataset, "source", root))
    require_spikes(samples, source, split, n_steps, dt)
    return samples, labels, source

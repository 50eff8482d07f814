"""Datasets, event recordings and input spikes.

Data: datasets as descriptors, N-MNIST recordings (real or emulated), and their conversion to
input spikes.

* :mod:`.registry` holds one :class:`DatasetDescriptor` per dataset (``[data] dataset``: shape,
  classes, reader, encodings) and the checklist for adding one; :func:`encode_split` reads and
  encodes a split for an experiment.
* :func:`load_dataset` opens a real N-MNIST folder (``Train/<digit>/*.bin``, ``Test/<digit>/*.bin``,
  or ``Train.zip``/``Test.zip``) or, without a folder, the embedded offline dataset: scikit-learn's
  handwritten digits recorded by an emulated event camera (:mod:`.emulator`) and cached in the same
  layout (:mod:`.embedded`).
* :func:`events_to_spikes` bins events into ``(channels, steps)`` for a Brian2
  ``SpikeGeneratorGroup``, channel ``(p*34 + y)*34 + x`` (:mod:`.encoding`).
* :func:`bin_dataset` bins a whole split into :class:`BinnedSamples` (2 bytes per spike, :mod:`.binned`).
* :class:`IntensitySamples` holds directly coded images (``encoding = "direct"``): one vector of
  intensities per sample, the analog input of the first layer at every step (:mod:`.analog`).
* :func:`read_nmnist_file` decodes one ``.bin`` recording (tonic's decoder, :mod:`.format`).
* :func:`emulate_idx` / :func:`emulate_images` record MNIST's IDX files (or any array of grayscale
  images) into an N-MNIST folder with a stratified train/validation/test split (:mod:`.convert`);
  :func:`split_idx` writes the same split of the IDX images themselves as IDX files that the MNIST
  reader opens (:mod:`.idx_split`), so static-image and event-based runs see the same digits.

Nothing here downloads anything, and importing the package does no work. See ``docs/data.md``.
"""

from __future__ import annotations

from .analog import IntensitySamples
from .binned import BinnedSamples, bin_dataset
from .convert import emulate_idx, emulate_images, stratified_split
from .embedded import (
    CACHE_ENVIRONMENT_VARIABLE,
    EMBEDDED_SEED,
    TEST_FRACTION,
    default_cache_dir,
    embedded_root,
)
from .emulator import EmulatorParameters, emulate_batch, emulate_saccades, prepare_image
from .encoding import N_CHANNELS, binning_summary, channel_coordinates, channel_index, events_to_spikes
from .format import (
    CLASSES,
    EVENT_DTYPE,
    SENSOR_SIZE,
    DataError,
    DataWarning,
    MissingDataError,
    encode_nmnist,
    read_nmnist_file,
    write_nmnist_file,
)
from .idx import read_idx, write_idx
from .idx_split import split_idx
from .nmnist import FIRST_SACCADE_US, EventDataset, balanced_subset, find_recordings, open_dataset
from .registry import DATASETS, ENCODINGS, DatasetDescriptor, Encoding, encode_split, get_dataset
from .split import validation_split
from .summary import describe_recordings, recording_statistics

__all__ = [
    "DATASETS",
    "ENCODINGS",
    "DatasetDescriptor",
    "Encoding",
    "get_dataset",
    "encode_split",
    "load_dataset",
    "load_embedded",
    "EventDataset",
    "events_to_spikes",
    "bin_dataset",
    "BinnedSamples",
    "IntensitySamples",
    "binning_summary",
    "channel_index",
    "channel_coordinates",
    "N_CHANNELS",
    "SENSOR_SIZE",
    "EVENT_DTYPE",
    "CLASSES",
    "FIRST_SACCADE_US",
    "read_nmnist_file",
    "encode_nmnist",
    "write_nmnist_file",
    "find_recordings",
    "balanced_subset",
    "validation_split",
    "open_dataset",
    "emulate_saccades",
    "emulate_batch",
    "prepare_image",
    "EmulatorParameters",
    "emulate_images",
    "emulate_idx",
    "stratified_split",
    "read_idx",
    "write_idx",
    "split_idx",
    "embedded_root",
    "default_cache_dir",
    "EMBEDDED_SEED",
    "TEST_FRACTION",
    "CACHE_ENVIRONMENT_VARIABLE",
    "describe_recordings",
    "recording_statistics",
    "DataError",
    "MissingDataError",
    "DataWarning",
]

EMBEDDED_DESCRIPTION = "embedded (sklearn digits through the event-camera emulator)"


def load_embedded(split: str = "train", *, subset: int | None = None, seed=0, first_saccade: bool = False,
                  cache_dir=None, transform=None, generator_seed: int = EMBEDDED_SEED,
                  params: EmulatorParameters | None = None, test_fraction: float = TEST_FRACTION,
                  max_per_class: int | None = None) -> EventDataset:
    """Open one split of the embedded dataset, generating it into the cache on first use.

    Parameters
    ----------
    split, subset, seed, first_saccade, transform
        As in :func:`load_dataset` (``seed`` only chooses the subset).
    cache_dir : str or os.PathLike, optional
        Cache folder (default ``$SDSNN_BIO_CACHE``, else ``~/.cache/sdsnn_bio``).
    generator_seed, params, test_fraction, max_per_class
        What to generate (see :func:`~sdsnn_bio.data.embedded.embedded_root`); the defaults give
        the dataset of record, changing them regenerates the cache.
    """
    root = embedded_root(cache_dir, seed=generator_seed, params=params, test_fraction=test_fraction,
                         max_per_class=max_per_class)
    return open_dataset(root, split, subset=subset, seed=seed, first_saccade=first_saccade,
                        transform=transform, source=f"{EMBEDDED_DESCRIPTION} at {root}")


def load_dataset(root=None, split: str = "train", *, subset: int | None = None, seed=0,
                 first_saccade: bool = False, cache_dir=None, transform=None) -> EventDataset:
    """Open one split of N-MNIST: a real folder, or the embedded dataset when ``root`` is None.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Folder with ``Train/`` and ``Test/`` (or ``Train.zip`` and ``Test.zip``) of the original
        N-MNIST; None (or ``""``) for the embedded offline dataset.
    split : {"train", "validation", "test"}
    subset : int, optional
        Class-balanced random subset of this many recordings (default: all).
    seed : int or numpy.random.Generator
        Randomness of the subset (never of the data).
    first_saccade : bool
        Keep only the first saccade (events with ``t < 100 000`` us).
    cache_dir : str or os.PathLike, optional
        Cache of the embedded dataset (ignored for a real folder).
    transform : callable, optional
        Applied to each item's events (e.g. a ``tonic.transforms`` object).

    Returns
    -------
    EventDataset
        ``dataset[i] -> (events, label)``; attributes ``sensor_size``, ``classes``, ``dtype``,
        ``files``, ``targets``.
    """
    if root is None or (isinstance(root, str) and root == ""):
        return load_embedded(split, subset=subset, seed=seed, first_saccade=first_saccade,
                             cache_dir=cache_dir, transform=transform)
    return open_dataset(root, split, subset=subset, seed=seed, first_saccade=first_saccade,
                        transform=transform)

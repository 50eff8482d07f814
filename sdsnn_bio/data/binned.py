"""Binned input spikes of many recordings, stored compactly in memory.

:func:`~sdsnn_bio.data.encoding.events_to_spikes` gives every recording as two int64 arrays
``(channels, steps)`` sorted by step (16 bytes per spike, plus two array objects). Held for 60 000 +
10 000 recordings that is several GB. :class:`BinnedSamples` keeps, per recording,

* ``channels`` as the smallest unsigned type holding ``n_channels - 1`` (uint16 for N-MNIST's 2312
  channels): 2 bytes per spike;
* ``step_counts``, the number of spikes in each time step, one row of ``n_steps`` small integers
  (uint16; 600 bytes per recording for 300 steps), from which ``steps`` is rebuilt as
  ``repeat(arange(n_steps), step_counts)``.

Indexing with an integer returns ``(channels, steps)`` as int64 arrays equal, element for element
and in the same order, to what was stored (for the output of ``events_to_spikes``, which is sorted
by step: exactly that output); indexing with a slice or an index array returns a
:class:`BinnedSamples` sharing the per-recording arrays (no copy of the spikes). The object is a
sequence of ``(channels, steps)`` pairs, so every consumer of a list of pairs accepts it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .format import DataError

__all__ = ["BinnedSamples", "BinnedSamplesBuilder", "bin_dataset", "require_spikes"]


def _uint_for(largest: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if largest <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


class BinnedSamples(Sequence):
    """A sequence of ``(channels, steps)`` spike pairs held compactly (see the module docstring).

    Parameters
    ----------
    channels : list of ndarray of unsigned int
        Channels of every recording's spikes, ordered by step.
    step_counts : ndarray, shape (n_recordings, n_steps)
        Spikes of every recording in every step; row ``i`` sums to ``len(channels[i])``.
    n_channels : int
        Input channels (``channels < n_channels``).
    """

    def __init__(self, channels, step_counts: np.ndarray, n_channels: int) -> None:
        channels = list(channels)
        step_counts = np.asarray(step_counts)
        if step_counts.ndim != 2 or step_counts.shape[0] != len(channels):
            raise ValueError(f"step_counts: expected shape ({len(channels)}, n_steps), got {step_counts.shape}")
        totals = step_counts.sum(axis=1, dtype=np.int64)
        lengths = np.fromiter((c.size for c in channels), dtype=np.int64, count=len(channels))
        if not np.array_equal(totals, lengths):
            bad = int(np.flatnonzero(totals != lengths)[0])
            raise ValueError(f"step_counts: row {bad} counts {totals[bad]} spikes, "
                             f"channels[{bad}] holds {lengths[bad]}")
        self._channels = channels
        self._step_counts = step_counts
        self.n_channels = int(n_channels)

    @classmethod
    def from_spikes(cls, samples, n_steps: int, n_channels: int) -> "BinnedSamples":
        """Store ``(channels, steps)`` pairs (e.g. a list of ``events_to_spikes`` outputs).

        Pairs not sorted by step are stably sorted by step (channels keep their order within a
        step); sorted pairs are stored exactly.
        """
        if isinstance(samples, BinnedSamples):
            return samples
        builder = BinnedSamplesBuilder(n_steps, n_channels)
        for channels, steps in samples:
            builder.append(channels, steps)
        return builder.finish()

    @property
    def n_steps(self) -> int:
        """Time steps per recording."""
        return int(self._step_counts.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the spike arrays (channels and step counts)."""
        return int(sum(c.nbytes for c in self._channels) + self._step_counts.nbytes)

    def spike_counts(self) -> np.ndarray:
        """Number of spikes of every recording (int64)."""
        return self._step_counts.sum(axis=1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._channels)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return BinnedSamples(self._channels[index], self._step_counts[index], self.n_channels)
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"index {index} out of range for {n} recordings")
            counts = self._step_counts[index]
            steps = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
            return self._channels[index].astype(np.int64), steps
        indices = np.asarray(index)
        if indices.dtype == bool or not np.issubdtype(indices.dtype, np.integer) or indices.ndim != 1:
            raise TypeError(f"index: expected an integer, a slice or a 1-D integer array, got {index!r}")
        return BinnedSamples([self._channels[int(i)] for i in indices], self._step_counts[indices], self.n_channels)

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]

    def __repr__(self) -> str:
        return (f"BinnedSamples(n={len(self)}, n_steps={self.n_steps}, n_channels={self.n_channels}, "
                f"{self.nbytes / 2**20:.1f} MiB)")


class BinnedSamplesBuilder:
    """Bin recordings one by one into :class:`BinnedSamples`.

    Collects recordings one by one (``append(channels, steps)``, then ``finish()``) without ever
    holding their int64 arrays together.

    Parameters
    ----------
    n_steps : int
        Time steps per recording.
    n_channels : int
        Input channels.
    """

    def __init__(self, n_steps: int, n_channels: int) -> None:
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"n_steps: expected a positive integer, got {n_steps!r}")
        if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
            raise ValueError(f"n_channels: expected a positive integer, got {n_channels!r}")
        self.n_steps, self.n_channels = int(n_steps), int(n_channels)
        self.channel_dtype = _uint_for(self.n_channels - 1)
        self.channels: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []

    def append(self, channels, steps) -> None:
        """Add one sample's binned events (input channel and time step of each spike)."""
        channels, steps = np.asarray(channels), np.asarray(steps)
        if channels.shape != steps.shape or channels.ndim != 1:
            raise ValueError(f"sample {len(self.channels)}: expected channels and steps of one length, got "
                             f"shapes {channels.shape} and {steps.shape}")
        if channels.size:
            for name, values, high in (("channels", channels, self.n_channels), ("steps", steps, self.n_steps)):
                if not np.issubdtype(values.dtype, np.integer) or values.min() < 0 or values.max() >= high:
                    raise ValueError(f"sample {len(self.channels)}: expected integer {name} in [0, {high}), got "
                                     f"dtype {values.dtype} range [{values.min()}, {values.max()}]")
            if np.any(np.diff(steps) < 0):
                order = np.argsort(steps, kind="stable")
                channels, steps = channels[order], steps[order]
        counts = np.bincount(steps.astype(np.int64), minlength=self.n_steps)
        self.channels.append(channels.astype(self.channel_dtype))
        self.counts.append(counts.astype(_uint_for(max(int(counts.max(initial=0)), 255))))

    def finish(self) -> BinnedSamples:
        """The samples appended so far as one :class:`BinnedSamples`."""
        dtype = max((c.dtype for c in self.counts), key=lambda d: d.itemsize, default=np.dtype(np.uint8))
        counts = np.zeros((len(self.counts), self.n_steps), dtype=dtype)
        for row, values in enumerate(self.counts):
            counts[row] = values
        return BinnedSamples(self.channels, counts, self.n_channels)


def bin_dataset(dataset, dt, n_steps: int, *, progress: bool = False,
                description: str = "binning") -> tuple[BinnedSamples, np.ndarray]:
    """Bin every recording of a dataset onto the time grid and store the spikes compactly.

    Parameters
    ----------
    dataset : sequence of (events, label)
        E.g. an :class:`~sdsnn_bio.data.nmnist.EventDataset`; ``events`` structured (x, y, t, p).
    dt : brian2.Quantity
        Time step.
    n_steps : int
        Steps per recording (later events are dropped, see ``events_to_spikes``).
    progress : bool
        Progress bar on a terminal.
    description : str
        Label of the progress bar.

    Returns
    -------
    samples : BinnedSamples
        ``samples[i]`` equals ``events_to_spikes(dataset[i][0], dt, n_steps)``.
    labels : ndarray of int64

    Raises
    ------
    DataError
        If the dataset has recordings but not one spike among them (an all-empty dataset would
        otherwise train and report chance accuracy).
    """
    from ..progress import progress_bar
    from .encoding import events_to_spikes

    sensor_size = getattr(dataset, "sensor_size", (34, 34, 2))
    builder = BinnedSamplesBuilder(n_steps, int(np.prod(sensor_size)))
    labels = np.empty(len(dataset), dtype=np.int64)
    with progress_bar(len(dataset), description, enabled=progress) as bar:
        for index in range(len(dataset)):
            events, label = dataset[index]
            builder.append(*events_to_spikes(events, dt, n_steps, sensor_size))
            labels[index] = int(label)
            bar.update(1)
    samples = builder.finish()
    require_spikes(samples, getattr(dataset, "source", None) or "dataset", getattr(dataset, "split", None),
                   n_steps, dt)
    return samples, labels


def require_spikes(samples: BinnedSamples, where: str, split: str | None, n_steps: int, dt) -> None:
    """Raise a :class:`DataError` if recordings exist but not one of them has a spike.

    An all-empty split would otherwise train on nothing and report chance accuracy.

    Parameters
    ----------
    samples : BinnedSamples
    where : str
        Where the data come from (named in the message).
    split : str or None
    n_steps : int
    dt : brian2.Quantity
        The time window ``[0, n_steps * dt)``, named in the message.
    """
    if len(samples) and not samples.spike_counts().any():
        raise DataError(
            f"{where}{f' (split {split!r})' if split else ''}: none of its {len(samples)} recordings holds an "
            f"event inside the window [0, {n_steps} x {dt}): nothing to learn from or to test on "
            "(empty files or images, or every timestamp past the window)"
        )

"""Analog input samples: one vector of intensities per sample (direct encoding).

The ``"direct"`` encoding (:func:`sdsnn_bio.data.images.encode_direct`) presents a static image as
a constant analog input: the intensity ``x_c`` of every input channel ``c = (ch * H + y) * W + x``
(in ``[0, 1]``) drives the first layer at every time step of the sample's window,

    ``J_t[n] = sum_c x_c * W[c, n]``     for every step ``t`` (the same at every step),

where a spike-coded input has ``J_t[n] = sum_c s_t[c] * W[c, n]`` with ``s_t[c]`` in ``{0, 1}``.
A sample is therefore a 1-D float array ``(n_input,)`` instead of a ``(channels, steps)`` pair of
spikes, and consumers tell the two apart by that (:func:`is_analog_sample`).

:class:`IntensitySamples` stores the samples of a split as one ``(n_samples, n_input)`` float32
array (the intensities ``value / 255`` rounded to float32 once, so the kernel and Brian2 receive
the same numbers) and is a sequence of float64 vectors, indexed like
:class:`~sdsnn_bio.data.binned.BinnedSamples` (an integer gives one sample, a slice or an index array
a new :class:`IntensitySamples` sharing nothing that can change).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["IntensitySamples", "is_analog_sample"]


def is_analog_sample(sample) -> bool:
    """True for a direct-encoded sample (a 1-D float array of intensities), False for spikes."""
    return isinstance(sample, np.ndarray) and sample.ndim == 1 and np.issubdtype(sample.dtype, np.floating)


class IntensitySamples(Sequence):
    """The analog input vectors of many samples (see the module docstring).

    Parameters
    ----------
    values : array_like, shape (n_samples, n_input)
        Finite intensities, one row per sample.
    n_steps : int
        Time steps per sample (the input is presented at every step).
    """

    def __init__(self, values, n_steps: int) -> None:
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2:
            raise ValueError(f"IntensitySamples: expected values of shape (n_samples, n_input), got {values.shape}")
        if values.size and not np.all(np.isfinite(values)):
            raise ValueError("IntensitySamples: expected finite intensities, got NaN or infinity")
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"n_steps: expected a positive integer, got {n_steps!r}")
        self._values = values
        self._values.setflags(write=False)
        self.n_steps = int(n_steps)
        self.n_channels = int(values.shape[1])

    @property
    def values(self) -> np.ndarray:
        """The stored intensities, ``(n_samples, n_input)`` float32 (read-only)."""
        return self._values

    @property
    def nbytes(self) -> int:
        """Bytes held by the intensities."""
        return int(self._values.nbytes)

    def spike_counts(self) -> np.ndarray:
        """Input deliveries per sample: channels with a non-zero intensity times ``n_steps``.

        The Brian2 input group emits one event per such channel at every step
        (:class:`~sdsnn_bio.model.SpikingNetwork`), so this is what it counts as input spikes.
        """
        return np.count_nonzero(self._values, axis=1).astype(np.int64) * self.n_steps

    def __len__(self) -> int:
        return int(self._values.shape[0])

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"index {index} out of range for {n} samples")
            return self._values[int(index)].astype(np.float64)
        if isinstance(index, slice):
            return IntensitySamples(self._values[index], self.n_steps)
        indices = np.asarray(index)
        if indices.dtype == bool or not np.issubdtype(indices.dtype, np.integer) or indices.ndim != 1:
            raise TypeError(f"index: expected an integer, a slice or a 1-D integer array, got {index!r}")
        return IntensitySamples(self._values[indices], self.n_steps)

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]

    def __repr__(self) -> str:
        return (f"IntensitySamples(n={len(self)}, n_steps={self.n_steps}, n_channels={self.n_channels}, "
                f"{self.nbytes / 2**20:.1f} MiB)")

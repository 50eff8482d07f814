"""Training-time augmentation of input spikes: random translations of the event-camera image.

A recording binned to input spikes ``(channels, steps)`` has channel ``(p*H + y)*W + x`` (see
:func:`sdsnn_bio.data.channel_index`). Shifting a sample by ``(dx, dy)`` pixels maps every spike of
pixel ``(x, y)`` to ``(x + dx, y + dy)``; spikes that leave the ``W x H`` sensor are dropped, timing
and polarity are kept. The same shift holds for the whole recording (the eye moves the digit, not
its events one by one), a new shift is drawn for every sample at every epoch::

    dx, dy ~ Uniform{-max_shift, ..., max_shift}      independently per sample and epoch

N-MNIST digits sit in a 34 x 34 field with a few pixels of margin around the 28 x 28 MNIST digit
and move by up to 7 pixels during the saccades, so shifts of 1-3 pixels keep the digit in view and
are the event-based analogue of the translation augmentation that classic MNIST networks use to
close their train-test gap. Augmentation acts on training batches only; validation, test and the
Brian2 evaluation see the recordings as recorded.

A direct-encoded sample (a vector of intensities, :mod:`sdsnn_bio.data.analog`) is shifted the same
way (:func:`shift_intensities`): pixel ``(x, y)`` moves to ``(x + dx, y + dy)``, pixels leaving the
image are dropped and the uncovered ones are 0.

The shifts are a pure function of ``(seed, epoch, batch)`` (:func:`batch_shifts`), so an
interrupted and resumed run draws the same shifts as an uninterrupted one.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["shift_spikes", "shift_intensities", "batch_shifts", "augment_samples"]

#: ``(width, height, polarities)`` of N-MNIST's ATIS recordings.
_SENSOR_SIZE = (34, 34, 2)


def _check_shift(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer number of pixels, got {value!r}")
    return int(value)


def shift_spikes(channels, steps, dx: int, dy: int, sensor_size=_SENSOR_SIZE):
    """Translate one sample's input spikes by ``(dx, dy)`` pixels.

    Parameters
    ----------
    channels, steps : array_like of int
        The sample's spikes (channel index and time step, one entry per spike).
    dx, dy : int
        Shift in pixels (positive: right, down).
    sensor_size : (int, int, int)
        ``(W, H, P)`` of the channel layout.

    Returns
    -------
    channels, steps : ndarray of int64
        Spikes that stay on the sensor, in the input order.
    """
    dx, dy = _check_shift("dx", dx), _check_shift("dy", dy)
    width, height, polarities = (int(v) for v in sensor_size)
    channels = np.asarray(channels, dtype=np.int64)
    steps = np.asarray(steps, dtype=np.int64)
    if channels.shape != steps.shape or channels.ndim != 1:
        raise ValueError(
            f"shift_spikes: expected channels and steps of one equal length, got shapes "
            f"{channels.shape} and {steps.shape}"
        )
    if channels.size and (channels.min() < 0 or channels.max() >= width * height * polarities):
        raise ValueError(
            f"shift_spikes: expected channels in [0, {width * height * polarities}), got values in "
            f"[{channels.min()}, {channels.max()}]"
        )
    if dx == 0 and dy == 0:
        return channels, steps
    x = channels % width + dx
    y = (channels // width) % height + dy
    p = channels // (width * height)
    keep = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    return ((p[keep] * height + y[keep]) * width + x[keep]), steps[keep]


def shift_intensities(values, dx: int, dy: int, sensor_size=_SENSOR_SIZE) -> np.ndarray:
    """Translate one direct-encoded sample by ``(dx, dy)`` pixels (uncovered pixels become 0).

    Parameters
    ----------
    values : array_like of float, shape (W*H*C,)
        Intensity of every channel ``(c*H + y)*W + x``.
    dx, dy : int
        Shift in pixels (positive: right, down).
    sensor_size : (int, int, int)
        ``(W, H, C)`` of the channel layout.

    Returns
    -------
    ndarray of float64, shape (W*H*C,)
    """
    dx, dy = _check_shift("dx", dx), _check_shift("dy", dy)
    width, height, channels = (int(v) for v in sensor_size)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (width * height * channels,):
        raise ValueError(f"shift_intensities: expected {width * height * channels} intensities for sensor size "
                         f"{(width, height, channels)}, got shape {values.shape}")
    image = values.reshape(channels, height, width)
    shifted = np.zeros_like(image)
    if abs(dx) < width and abs(dy) < height:
        shifted[:, max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
            image[:, max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
    return shifted.reshape(-1)


def batch_shifts(seed: int, epoch: int, batch: int, n_samples: int, max_shift: int) -> np.ndarray:
    """Shifts ``(n_samples, 2)`` of one training batch, a pure function of its position in the run.

    Parameters
    ----------
    seed : int
        The run's seed.
    epoch, batch : int
        0-based epoch and batch-within-epoch.
    n_samples : int
        Samples in the batch.
    max_shift : int
        Largest shift in pixels (>= 0).
    """
    max_shift = _check_shift("learning.augment_max_shift", max_shift)
    if max_shift < 0:
        raise ValueError(f"learning.augment_max_shift: expected an integer >= 0, got {max_shift}")
    rng = np.random.default_rng([int(seed), 7, int(epoch), int(batch)])
    return rng.integers(-max_shift, max_shift + 1, size=(int(n_samples), 2))


def augment_samples(samples, shifts, sensor_size=_SENSOR_SIZE) -> list:
    """Shift each sample by its row of ``shifts``.

    A ``(channels, steps)`` sample with :func:`shift_spikes`, a direct-encoded intensity vector
    (1-D float array) with :func:`shift_intensities`.
    """
    samples = list(samples)
    shifts = np.asarray(shifts)
    if shifts.shape != (len(samples), 2):
        raise ValueError(f"shifts: expected shape ({len(samples)}, 2), got {shifts.shape}")
    shifted = []
    for sample, (dx, dy) in zip(samples, shifts):
        if isinstance(sample, np.ndarray) and sample.ndim == 1 and np.issubdtype(sample.dtype, np.floating):
            shifted.append(shift_intensities(sample, int(dx), int(dy), sensor_size))
        else:
            channels, steps = sample
            shifted.append(shift_spikes(channels, steps, int(dx), int(dy), sensor_size))
    return shifted

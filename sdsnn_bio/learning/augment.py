"""Training-time augmentation of input spikes: random translations and distortions of the image.

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

**Distortions** (rotation, scaling, elastic deformation; Simard, Steinkraus & Platt 2003, the
augmentation that lets a 784-800-10 perceptron reach 99.3% on MNIST) act on the sensor plane the
same way, after the shift. A distortion is a nearest-pixel *warp*: every destination pixel
``d = (x, y)`` takes the spikes of one source pixel (or none), found by mapping ``d`` back::

    source(d) = round( R(-theta) (d - c) / s + c + u(d) )            c: the sensor's centre

with ``theta ~ Uniform[-max_rotation, max_rotation]``, ``s ~ Uniform[1 - max_scale, 1 + max_scale]``
and ``u`` an elastic displacement field: uniform noise in ``[-1, 1]`` per pixel and axis, smoothed
by a Gaussian of width ``elastic_sigma`` pixels and scaled by ``elastic_alpha`` pixels. Mapping
destinations back (rather than spikes forward) leaves no holes when the digit grows and never puts
two spikes in one channel at one step when it shrinks: a source pixel's spikes go to every
destination that maps to it, each once. Timing and polarity are kept; destinations whose source
falls off the sensor stay silent. One warp holds for the whole recording; a new one is drawn per
sample and epoch, a pure function of ``(seed, epoch, batch)`` (:func:`batch_sources`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = [
    "shift_spikes", "shift_intensities", "batch_shifts", "augment_samples",
    "Distortion", "warp_source", "warp_spikes", "warp_intensities", "batch_sources", "augment_batch",
]

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


def augment_samples(samples, shifts, sensor_size=_SENSOR_SIZE, sources=None) -> list:
    """Shift each sample by its row of ``shifts``, then warp it by its row of ``sources``.

    A ``(channels, steps)`` sample with :func:`shift_spikes` and :func:`warp_spikes`, a
    direct-encoded intensity vector (1-D float array) with :func:`shift_intensities` and
    :func:`warp_intensities`.

    Parameters
    ----------
    samples : list
        The batch's samples.
    shifts : array_like of int, shape (B, 2)
        ``(dx, dy)`` per sample (pixels); zeros for no translation.
    sensor_size : (int, int, int)
        ``(W, H, C)`` of the channel layout.
    sources : ndarray of int, shape (B, W*H), optional
        Each sample's warp (:func:`batch_sources`); None for no distortion.
    """
    samples = list(samples)
    shifts = np.asarray(shifts)
    if shifts.shape != (len(samples), 2):
        raise ValueError(f"shifts: expected shape ({len(samples)}, 2), got {shifts.shape}")
    width, height = int(sensor_size[0]), int(sensor_size[1])
    if sources is not None:
        sources = np.asarray(sources)
        if sources.shape != (len(samples), width * height):
            raise ValueError(f"sources: expected shape ({len(samples)}, {width * height}), got {sources.shape}")
    shifted = []
    for k, (sample, (dx, dy)) in enumerate(zip(samples, shifts)):
        if isinstance(sample, np.ndarray) and sample.ndim == 1 and np.issubdtype(sample.dtype, np.floating):
            out = shift_intensities(sample, int(dx), int(dy), sensor_size)
            if sources is not None:
                out = warp_intensities(out, sources[k], sensor_size)
        else:
            channels, steps = sample
            out = shift_spikes(channels, steps, int(dx), int(dy), sensor_size)
            if sources is not None:
                out = warp_spikes(*out, sources[k], sensor_size)
        shifted.append(out)
    return shifted


# ------------------------------------------------------------------------------------ distortions
@dataclass(frozen=True)
class Distortion:
    """Ranges of the random distortion drawn per training sample (all 0: none).

    Parameters
    ----------
    max_rotation : float
        Largest rotation about the sensor's centre (degrees, in [0, 180)).
    max_scale : float
        Largest relative change of size (scale drawn from ``[1 - max_scale, 1 + max_scale]``,
        in [0, 1)).
    elastic_alpha : float
        Scale of the elastic displacement field (pixels, >= 0; 0: no elastic deformation).
    elastic_sigma : float
        Width of the Gaussian that smooths it (pixels, > 0).
    """

    max_rotation: float = 0.0
    max_scale: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 4.0

    def __post_init__(self) -> None:
        checks = (
            ("learning.augment_max_rotation", self.max_rotation, lambda v: 0.0 <= v < 180.0,
             "a number of degrees in [0, 180)"),
            ("learning.augment_max_scale", self.max_scale, lambda v: 0.0 <= v < 1.0, "a fraction in [0, 1)"),
            ("learning.augment_elastic_alpha", self.elastic_alpha, lambda v: v >= 0.0, "a number of pixels >= 0"),
            ("learning.augment_elastic_sigma", self.elastic_sigma, lambda v: v > 0.0, "a number of pixels > 0"),
        )
        for name, value, in_range, expected in checks:
            number = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
            if not (number and in_range(value)):
                raise ValueError(f"{name}: expected {expected}, got {value!r}")

    @property
    def enabled(self) -> bool:
        """True when any range is non-zero."""
        return bool(self.max_rotation or self.max_scale or self.elastic_alpha)


def warp_source(rotation: float = 0.0, scale: float = 1.0, displacement=None,
                sensor_size=_SENSOR_SIZE) -> np.ndarray:
    """Source pixel of every destination pixel of a rotation, scaling and displacement.

    Parameters
    ----------
    rotation : float
        Counter-clockwise rotation of the image about the sensor's centre (degrees; y points down,
        so on screen it turns clockwise).
    scale : float
        Size factor (> 0; above 1 enlarges).
    displacement : ndarray, shape (2, H, W), optional
        ``(ux, uy)`` added to each destination's source position (pixels).
    sensor_size : (int, int, int)
        ``(W, H, C)`` of the channel layout.

    Returns
    -------
    ndarray of int64, shape (W*H,)
        ``y*W + x`` of the source of destination ``y*W + x``; -1 where it falls off the sensor.
    """
    width, height = int(sensor_size[0]), int(sensor_size[1])
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"warp_source: expected a scale > 0, got {scale!r}")
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    angle = math.radians(rotation)
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = x - cx, y - cy
    sx = (cos * u + sin * v) / scale + cx  # R(-angle) (d - c) / scale + c
    sy = (-sin * u + cos * v) / scale + cy
    if displacement is not None:
        displacement = np.asarray(displacement, dtype=np.float64)
        if displacement.shape != (2, height, width):
            raise ValueError(f"warp_source: expected a displacement of shape {(2, height, width)}, "
                             f"got {displacement.shape}")
        sx, sy = sx + displacement[0], sy + displacement[1]
    sx, sy = np.rint(sx).astype(np.int64), np.rint(sy).astype(np.int64)
    inside = (sx >= 0) & (sx < width) & (sy >= 0) & (sy < height)
    return np.where(inside, sy * width + sx, -1).ravel()


def _check_source(source, n_pixels: int, where: str) -> np.ndarray:
    source = np.asarray(source)
    if source.shape != (n_pixels,) or not np.issubdtype(source.dtype, np.integer):
        raise ValueError(f"{where}: expected an integer source map of shape ({n_pixels},), "
                         f"got {source.dtype} of shape {source.shape}")
    if source.size and (source.min() < -1 or source.max() >= n_pixels):
        raise ValueError(f"{where}: expected source pixels in [-1, {n_pixels}), got values in "
                         f"[{source.min()}, {source.max()}]")
    return source.astype(np.int64, copy=False)


def warp_spikes(channels, steps, source, sensor_size=_SENSOR_SIZE):
    """Move one sample's input spikes through a nearest-pixel warp.

    Parameters
    ----------
    channels, steps : array_like of int
        The sample's spikes (channel index and time step, one entry per spike).
    source : array_like of int, shape (W*H,)
        Source pixel of each destination pixel, -1 for none (:func:`warp_source`).
    sensor_size : (int, int, int)
        ``(W, H, P)`` of the channel layout.

    Returns
    -------
    channels, steps : ndarray of int64
        One spike at every destination pixel for each spike of its source pixel (same step and
        polarity), ordered by input spike, then by destination.
    """
    width, height, polarities = (int(v) for v in sensor_size)
    n_pixels = width * height
    source = _check_source(source, n_pixels, "warp_spikes")
    channels = np.asarray(channels, dtype=np.int64)
    steps = np.asarray(steps, dtype=np.int64)
    if channels.shape != steps.shape or channels.ndim != 1:
        raise ValueError(f"warp_spikes: expected channels and steps of one equal length, got shapes "
                         f"{channels.shape} and {steps.shape}")
    if channels.size and (channels.min() < 0 or channels.max() >= n_pixels * polarities):
        raise ValueError(f"warp_spikes: expected channels in [0, {n_pixels * polarities}), got values in "
                         f"[{channels.min()}, {channels.max()}]")
    destinations = np.flatnonzero(source >= 0)
    destinations = destinations[np.argsort(source[destinations], kind="stable")]  # grouped by source
    by_source = source[destinations]
    pixel, polarity = channels % n_pixels, channels // n_pixels
    first = np.searchsorted(by_source, pixel, side="left")
    count = np.searchsorted(by_source, pixel, side="right") - first
    spike = np.repeat(np.arange(channels.size), count)
    within = np.arange(spike.size) - np.repeat(np.cumsum(count) - count, count)
    target = destinations[np.repeat(first, count) + within]
    return polarity[spike] * n_pixels + target, steps[spike]


def warp_intensities(values, source, sensor_size=_SENSOR_SIZE) -> np.ndarray:
    """Warp one direct-encoded sample: destination pixel ``d`` takes the intensities of ``source[d]``.

    Parameters
    ----------
    values : array_like of float, shape (W*H*C,)
        Intensity of every channel ``(c*H + y)*W + x``.
    source : array_like of int, shape (W*H,)
        Source pixel of each destination pixel, -1 for none (those become 0).
    sensor_size : (int, int, int)
        ``(W, H, C)`` of the channel layout.

    Returns
    -------
    ndarray of float64, shape (W*H*C,)
    """
    width, height, channels = (int(v) for v in sensor_size)
    source = _check_source(source, width * height, "warp_intensities")
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (width * height * channels,):
        raise ValueError(f"warp_intensities: expected {width * height * channels} intensities for sensor size "
                         f"{(width, height, channels)}, got shape {values.shape}")
    image = values.reshape(channels, width * height)
    out = np.where(source >= 0, image[:, np.maximum(source, 0)], 0.0)
    return out.reshape(-1)


def batch_sources(seed: int, epoch: int, batch: int, n_samples: int, distortion: Distortion,
                  sensor_size=_SENSOR_SIZE) -> np.ndarray:
    """Warps ``(n_samples, W*H)`` of one training batch, a pure function of its position in the run.

    Parameters
    ----------
    seed : int
        The run's seed.
    epoch, batch : int
        0-based epoch and batch-within-epoch.
    n_samples : int
        Samples in the batch.
    distortion : Distortion
        The ranges to draw from.
    sensor_size : (int, int, int)
        ``(W, H, C)`` of the channel layout.
    """
    from scipy.ndimage import gaussian_filter

    if not isinstance(distortion, Distortion):
        raise TypeError(f"batch_sources: expected a Distortion, got {type(distortion).__name__}")
    width, height = int(sensor_size[0]), int(sensor_size[1])
    rng = np.random.default_rng([int(seed), 11, int(epoch), int(batch)])  # 7 is the shifts' stream
    out = np.empty((int(n_samples), width * height), dtype=np.int64)
    for k in range(int(n_samples)):
        rotation = rng.uniform(-distortion.max_rotation, distortion.max_rotation)
        scale = rng.uniform(1.0 - distortion.max_scale, 1.0 + distortion.max_scale)
        displacement = None
        if distortion.elastic_alpha:
            noise = rng.uniform(-1.0, 1.0, size=(2, height, width))
            displacement = distortion.elastic_alpha * np.stack([
                gaussian_filter(noise[axis], distortion.elastic_sigma, mode="constant") for axis in (0, 1)])
        out[k] = warp_source(rotation, scale, displacement, sensor_size)
    return out


def augment_batch(samples, seed: int, epoch: int, batch: int, max_shift: int, distortion: Distortion,
                  sensor_size=_SENSOR_SIZE) -> list:
    """One training batch as the training loop sees it: shifted, then warped (or as it is).

    The shifts (:func:`batch_shifts`) and warps (:func:`batch_sources`) are drawn from the batch's
    position in the run, so that the same call gives the same batch in a resumed run.

    Parameters
    ----------
    samples : list
        The batch's samples.
    seed : int
        The run's seed.
    epoch, batch : int
        0-based epoch and batch-within-epoch.
    max_shift : int
        ``learning.augment_max_shift`` (pixels; 0: no translation).
    distortion : Distortion
        The ranges of the warps (none enabled: no warp).
    sensor_size : (int, int, int)
        ``(W, H, C)`` of the channel layout.
    """
    samples = list(samples)
    if not (max_shift or distortion.enabled):
        return samples
    shifts = batch_shifts(seed, epoch, batch, len(samples), max_shift)
    sources = batch_sources(seed, epoch, batch, len(samples), distortion, sensor_size) if distortion.enabled else None
    return augment_samples(samples, shifts, sensor_size, sources)

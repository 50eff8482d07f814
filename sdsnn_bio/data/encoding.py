"""Events to input spikes on the simulation time grid (for a Brian2 ``SpikeGeneratorGroup``).

Channel index
    An event at pixel ``(x, y)`` with polarity ``p`` (1 = ON, 0 = OFF) drives input channel
    ``c = (p * H + y) * W + x`` for a sensor of width ``W``, height ``H`` (N-MNIST: ``W = H = 34``,
    so ``c = (p*34 + y)*34 + x`` in ``[0, 2312)``: OFF channels first, then ON, each row-major).
    :func:`channel_coordinates` inverts it (e.g. to draw receptive fields as images).
Binning
    Time step ``k = floor(t / dt)`` with ``t`` in microseconds (computed exactly in integer
    microseconds when ``dt`` is a whole number of microseconds). The sample window is
    ``[0, n_steps * dt)``: events at or after ``n_steps * dt`` are dropped.
Merging
    A channel fires at most once per step (a ``SpikeGeneratorGroup`` accepts one spike per neuron
    per time step): several events of one channel in one step become a single spike.
    :func:`binning_summary` reports how many events were dropped and merged.
"""

from __future__ import annotations

import math

import numpy as np

from .format import SENSOR_SIZE, DataError, check_events

__all__ = [
    "N_CHANNELS",
    "channel_index",
    "channel_coordinates",
    "events_to_spikes",
    "encode_events",
    "encode_frames",
    "binning_summary",
]

#: Input channels of N-MNIST: 34 * 34 pixels * 2 polarities.
N_CHANNELS = SENSOR_SIZE[0] * SENSOR_SIZE[1] * SENSOR_SIZE[2]


def _check_sensor_size(sensor_size) -> tuple[int, int, int]:
    try:
        values = tuple(sensor_size)
    except TypeError:
        values = ()
    if len(values) != 3 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise ValueError(
            f"sensor_size: expected (width, height, polarities), three positive integers, got {sensor_size!r}"
        )
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def channel_index(x, y, p, sensor_size=SENSOR_SIZE):
    """Input channel of pixel ``(x, y)`` and polarity ``p``: ``(p * H + y) * W + x``.

    Parameters
    ----------
    x, y, p : int or array_like of int
        Column in ``[0, W)``, row in ``[0, H)``, polarity in ``[0, P)`` (1 = ON, 0 = OFF).
    sensor_size : (int, int, int)
        ``(W, H, P)``, default ``(34, 34, 2)``.

    Returns
    -------
    int or ndarray of int64
    """
    width, height, polarities = _check_sensor_size(sensor_size)
    scalar = all(np.ndim(v) == 0 for v in (x, y, p))
    x, y, p = (np.asarray(v) for v in (x, y, p))
    for name, values, high in (("x", x, width), ("y", y, height), ("p", p, polarities)):
        if not (np.issubdtype(values.dtype, np.integer) or values.dtype == bool):
            raise ValueError(f"channel_index: expected integer {name}, got dtype {values.dtype}")
        if values.size and (values.min() < 0 or values.max() >= high):
            raise ValueError(
                f"channel_index: expected {name} in [0, {high}) for sensor size {(width, height, polarities)}, "
                f"got values in [{values.min()}, {values.max()}]"
            )
    channel = (p.astype(np.int64) * height + y.astype(np.int64)) * width + x.astype(np.int64)
    return int(channel) if scalar else channel


def channel_coordinates(channel, sensor_size=SENSOR_SIZE):
    """Inverse of :func:`channel_index`: ``(x, y, p)`` of input channel(s) ``channel``.

    Returns
    -------
    x, y, p : int or ndarray of int64
    """
    width, height, polarities = _check_sensor_size(sensor_size)
    scalar = np.ndim(channel) == 0
    channel = np.asarray(channel)
    if not np.issubdtype(channel.dtype, np.integer):
        raise ValueError(f"channel_coordinates: expected integer channels, got dtype {channel.dtype}")
    n = width * height * polarities
    if channel.size and (channel.min() < 0 or channel.max() >= n):
        raise ValueError(
            f"channel_coordinates: expected channels in [0, {n}), got values in [{channel.min()}, {channel.max()}]"
        )
    channel = channel.astype(np.int64)
    x = channel % width
    y = (channel // width) % height
    p = channel // (width * height)
    if scalar:
        return int(x), int(y), int(p)
    return x, y, p


def _dt_microseconds(dt) -> float:
    from brian2 import Quantity, second
    from brian2.units.fundamentalunits import DimensionMismatchError, fail_for_dimension_mismatch

    if not isinstance(dt, Quantity):
        raise ValueError(f"dt: expected a time with a Brian2 unit (e.g. 1*ms), got {dt!r}")
    try:
        fail_for_dimension_mismatch(dt, second)
    except DimensionMismatchError:
        raise ValueError(f"dt: expected a time (unit of seconds), got {dt!r}") from None
    if np.ndim(dt) != 0:
        raise ValueError(f"dt: expected a single time step, got an array of shape {np.shape(dt)}")
    microseconds = float(dt / second) * 1e6
    if not math.isfinite(microseconds) or microseconds <= 0:
        raise ValueError(f"dt: expected a time > 0, got {dt!r}")
    return microseconds


def _check_events_and_steps(events, sensor_size, n_steps) -> tuple[int, int, int]:
    """Validate the sensor size, ``n_steps`` and the events (ValueError naming what is wrong)."""
    sensor_size = _check_sensor_size(sensor_size)
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps: expected a positive integer, got {n_steps!r}")
    try:
        check_events(events, sensor_size, name="events")
    except DataError as error:
        raise ValueError(str(error)) from None
    return sensor_size


def _bin(events, dt, n_steps: int, sensor_size):
    sensor_size = _check_events_and_steps(events, sensor_size, n_steps)
    dt_us = _dt_microseconds(dt)
    t = np.asarray(events["t"])
    if not (np.issubdtype(t.dtype, np.integer) or np.issubdtype(t.dtype, np.floating)):
        raise ValueError(f"events: expected numeric timestamps t (microseconds), got dtype {t.dtype}")
    if np.issubdtype(t.dtype, np.floating) and not np.all(np.isfinite(t)):
        raise ValueError("events: expected finite timestamps t, got NaN or infinity")
    width, height, _ = sensor_size
    whole_us = round(dt_us)
    if abs(dt_us - whole_us) < 1e-6 * max(1.0, dt_us) and np.issubdtype(t.dtype, np.integer):
        steps = t.astype(np.int64) // int(whole_us)
    else:
        steps = np.floor(t.astype(np.float64) / dt_us).astype(np.int64)
    inside = steps < int(n_steps)
    channel = channel_index(np.asarray(events["x"])[inside].astype(np.int64),
                            np.asarray(events["y"])[inside].astype(np.int64),
                            np.asarray(events["p"])[inside].astype(np.int64), sensor_size)
    n_channels = width * height * sensor_size[2]
    key = _sorted_unique(steps[inside] * n_channels + channel, int(n_steps) * n_channels)
    return key % n_channels, key // n_channels, int(np.count_nonzero(~inside))


#: Key spaces up to this size are deduplicated with a boolean mask (N-MNIST at 300 steps: 693 600).
_MASK_LIMIT = 1 << 25


def _sorted_unique(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """``np.unique(keys)`` for keys in ``[0, n_keys)``: through a mask when the key space is small.

    The mask marks every key present and ``flatnonzero`` lists them in increasing order, the
    result of ``np.unique`` (int64), about 5x faster for a recording of ~7000 events.
    """
    if n_keys > _MASK_LIMIT or keys.size * 8 < n_keys // 64:
        return np.unique(keys)
    present = np.zeros(n_keys, dtype=bool)
    present[keys] = True
    return np.flatnonzero(present).astype(np.int64, copy=False)


def events_to_spikes(events, dt, n_steps: int, sensor_size=SENSOR_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Bin events into spikes ``(channels, steps)`` for a ``SpikeGeneratorGroup``.

    Parameters
    ----------
    events : structured array with fields x, y, t, p
        ``t`` in microseconds (>= 0); ``x``, ``y``, ``p`` inside ``sensor_size``.
    dt : brian2.Quantity
        Time step (e.g. ``1*ms``).
    n_steps : int
        Steps per sample; the window is ``[0, n_steps*dt)`` and later events are dropped.
    sensor_size : (int, int, int)
        ``(W, H, P)``, default ``(34, 34, 2)``.

    Returns
    -------
    channels, steps : ndarray of int64
        One entry per spike, sorted by step then channel, at most one spike per (channel, step);
        the spike times are ``steps * dt``.

    Raises
    ------
    ValueError
        If ``dt`` is not a positive Brian2 time, ``n_steps`` not a positive integer, ``events``
        lacks a field or has a coordinate outside the sensor or a negative time.
    """
    channels, steps, _ = _bin(events, dt, n_steps, sensor_size)
    return channels, steps


def encode_events(events, *, shape, dt, n_steps: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """The ``"events"`` encoding of :mod:`sdsnn_bio.data.registry`: :func:`events_to_spikes`.

    ``shape`` is the sensor ``(W, H, P)`` (after any down-sampling); ``rng`` is unused (the
    encoding is deterministic) and present for the encodings' common signature.
    """
    return events_to_spikes(events, dt, n_steps, sensor_size=shape)


def encode_frames(events, *, shape, dt, n_steps: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """The ``"frames"`` encoding: the whole recording in ``n_steps`` equal time bins (tonic ``ToFrame``).

    ``tonic.transforms.ToFrame(sensor_size=shape, n_time_bins=n_steps)`` cuts the span from the
    first to the last event into ``n_steps`` bins of equal duration and counts the events of every
    pixel and polarity in each; a channel spikes at step ``k`` when bin ``k`` holds at least one of
    its events. The step length of the network (``dt``) is then a model time step, not the data's:
    recordings of different durations are stretched to the same ``n_steps`` (the usual practice for
    DVS-Gesture, whose gestures last about 6 s). ``dt`` and ``rng`` are unused.

    Returns
    -------
    channels, steps : ndarray of int64
        One entry per spike, sorted by step then channel.
    """
    from tonic.transforms import ToFrame

    sensor_size = _check_events_and_steps(events, shape, n_steps)
    if len(events) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    frames = ToFrame(sensor_size=sensor_size, n_time_bins=int(n_steps))(events.copy())  # (T, P, H, W)
    steps, polarity, y, x = np.nonzero(frames[:n_steps])
    width, height, _ = sensor_size
    channels = (polarity.astype(np.int64) * height + y) * width + x
    return channels.astype(np.int64), steps.astype(np.int64)


def binning_summary(events, dt, n_steps: int, sensor_size=SENSOR_SIZE) -> dict:
    """What :func:`events_to_spikes` does to ``events``.

    Returns
    -------
    dict
        ``n_events`` (input), ``n_dropped`` (at or after ``n_steps*dt``), ``n_merged`` (events
        absorbed into another event's spike: same channel, same step) and ``n_spikes`` (output);
        ``n_events == n_dropped + n_merged + n_spikes``.
    """
    channels, _, dropped = _bin(events, dt, n_steps, sensor_size)
    n_events = int(len(events))
    return {
        "n_events": n_events,
        "n_dropped": dropped,
        "n_merged": n_events - dropped - int(channels.size),
        "n_spikes": int(channels.size),
    }

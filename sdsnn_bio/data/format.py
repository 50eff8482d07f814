"""The N-MNIST binary event format: decoding (through tonic) and encoding.

Each event of an N-MNIST ``.bin`` file (Orchard et al. 2015, dataset notes at
https://www.garrickorchard.com/datasets/n-mnist) occupies 5 bytes, 40 bits, big-endian::

    bits 39-32  x address (pixels)
    bits 31-24  y address (pixels)
    bit  23     polarity (1 = ON, 0 = OFF)
    bits 22-0   timestamp (microseconds)

An "event" with ``y == 240`` is a timestamp-overflow marker: it is dropped and ``2**13`` us is added
to the timestamps of all later events (the rule of Orchard's reader, kept by tonic).

Decoding is delegated to :func:`tonic.io.read_mnist_file` after the byte count has been checked (a
length that is not a multiple of 5 means a truncated or foreign file, which tonic would misread);
decoded coordinates are then checked against the sensor. Events are tonic's structured array with
fields ``(x, y, t, p)``, the dtype of :class:`tonic.datasets.NMNIST`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

__all__ = [
    "DataError",
    "MissingDataError",
    "DataWarning",
    "EVENT_DTYPE",
    "SENSOR_SIZE",
    "CLASSES",
    "EVENT_BYTES",
    "decode_nmnist",
    "read_nmnist_file",
    "encode_nmnist",
    "write_nmnist_file",
    "check_events",
]

#: Structured dtype of the events, as :attr:`tonic.datasets.NMNIST.dtype`.
EVENT_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
#: N-MNIST sensor: width (x), height (y), polarities, as tonic's ``sensor_size``.
SENSOR_SIZE = (34, 34, 2)
#: Class names, as :attr:`tonic.datasets.NMNIST.classes`; the label is the index.
CLASSES = [
    "0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
    "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine",
]
#: Bytes per event in a ``.bin`` file.
EVENT_BYTES = 5
_OVERFLOW_Y = 240
_MAX_TIMESTAMP = 2**23 - 1


class DataError(ValueError):
    """A data file or folder is not what was expected (the message names it and the expectation)."""


class MissingDataError(DataError, FileNotFoundError):
    """A data file or folder does not exist."""


class DataWarning(UserWarning):
    """Data that can be read but probably not what was meant (e.g. a split missing a class)."""


def _describe(source, name: str | None) -> str:
    if name is not None:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "<bytes>"


def decode_nmnist(data: bytes, name: str = "<bytes>", sensor_size=SENSOR_SIZE) -> np.ndarray:
    """Decode the bytes of one N-MNIST ``.bin`` recording.

    Parameters
    ----------
    data : bytes-like
        The whole file content.
    name : str
        Where the bytes come from (a path, or ``archive.zip::member``), used in error messages.
    sensor_size : tuple of int
        ``(width, height, polarities)``; decoded ``x``/``y`` must lie inside it.

    Returns
    -------
    ndarray of EVENT_DTYPE
        Events in file order (N-MNIST files are sorted by time).

    Raises
    ------
    DataError
        If the length is not a multiple of 5 bytes or a coordinate lies outside the sensor.
    """
    from tonic.io import read_mnist_file as tonic_read_mnist_file

    data = bytes(data)
    if len(data) % EVENT_BYTES:
        raise DataError(
            f"{name}: expected an N-MNIST .bin file of 5-byte events (length a multiple of 5), got "
            f"{len(data)} bytes ({len(data) // EVENT_BYTES} events and {len(data) % EVENT_BYTES} "
            "stray bytes: truncated or not an N-MNIST file)"
        )
    if not data:
        return np.zeros(0, dtype=EVENT_DTYPE)
    events = tonic_read_mnist_file(io.BytesIO(data), dtype=EVENT_DTYPE, is_stream=True)
    check_events(events, sensor_size, name=name)
    return events


def read_nmnist_file(source, *, name: str | None = None, sensor_size=SENSOR_SIZE) -> np.ndarray:
    """Read one N-MNIST recording from a path, a binary file object or bytes.

    Parameters
    ----------
    source : str, os.PathLike, bytes-like or binary file object
        The ``.bin`` file (or its content).
    name : str, optional
        Name used in error messages (default: the path, or ``<bytes>``).
    sensor_size : tuple of int
        ``(width, height, polarities)``, default N-MNIST's ``(34, 34, 2)``.

    Returns
    -------
    ndarray of EVENT_DTYPE
        Fields ``x``, ``y`` (pixels), ``t`` (microseconds), ``p`` (1 = ON, 0 = OFF).

    Raises
    ------
    MissingDataError
        If the path does not exist.
    DataError
        If the content is not a valid N-MNIST recording (see :func:`decode_nmnist`).
    """
    label = _describe(source, name)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise MissingDataError(f"{path}: expected an N-MNIST .bin file, but no such file exists")
        try:
            data = path.read_bytes()
        except OSError as error:
            raise DataError(f"{path}: could not read the N-MNIST .bin file ({error})") from error
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise DataError(f"{label}: expected a binary file object, its read() returned {type(data).__name__}")
    else:
        raise DataError(
            f"source: expected a path, bytes or a binary file object, got {type(source).__name__}"
        )
    return decode_nmnist(data, label, sensor_size)


def check_events(events, sensor_size=SENSOR_SIZE, *, name: str = "events") -> None:
    """Check that ``events`` has ``x, y, t, p`` fields and lies inside the sensor.

    Raises
    ------
    DataError
        Naming ``name``, the offending field, the expected range and the first bad value.
    """
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    missing = [f for f in ("x", "y", "t", "p") if f not in names]
    if missing:
        raise DataError(
            f"{name}: expected a structured event array with fields x, y, t, p; missing {missing} "
            f"(got fields {list(names)})"
        )
    width, height, n_polarities = (int(v) for v in sensor_size)
    for field, high in (("x", width), ("y", height), ("p", n_polarities)):
        values = np.asarray(events[field])
        bad = (values < 0) | (values >= high)
        if np.any(bad):
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{name}: expected {field} in [0, {high}) for sensor size {tuple(sensor_size)}, got "
                f"{int(np.count_nonzero(bad))} events outside (first: event {first}, "
                f"{field}={values[first].item()!r})"
            )
    t = np.asarray(events["t"])
    if t.size and t.min() < 0:
        raise DataError(f"{name}: expected timestamps t >= 0 us, got t={t.min().item()!r}")


def encode_nmnist(events) -> bytes:
    """Encode events into the N-MNIST ``.bin`` format (inverse of :func:`decode_nmnist`).

    No overflow markers are written, so timestamps must fit 23 bits (``t < 2**23`` us, 8.4 s).

    Parameters
    ----------
    events : structured array with fields x, y, t, p
        ``x``, ``y`` in ``[0, 256)`` with ``y != 240``, ``p`` in {0, 1}, ``t`` in microseconds.

    Returns
    -------
    bytes
        ``5 * len(events)`` bytes.
    """
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    if not all(f in names for f in ("x", "y", "t", "p")):
        raise ValueError(f"events: expected a structured array with fields x, y, t, p, got fields {names}")
    x = np.asarray(events["x"]).astype(np.int64)
    y = np.asarray(events["y"]).astype(np.int64)
    t = np.asarray(events["t"]).astype(np.int64)
    p = np.asarray(events["p"]).astype(np.int64)
    for field, values, high in (("x", x, 256), ("y", y, 256), ("p", p, 2), ("t", t, _MAX_TIMESTAMP + 1)):
        if values.size and (values.min() < 0 or values.max() >= high):
            raise ValueError(f"events.{field}: expected values in [0, {high}), got "
                             f"[{values.min()}, {values.max()}]")
    if np.any(y == _OVERFLOW_Y):
        raise ValueError("events.y: y == 240 is reserved for overflow markers in the N-MNIST format")
    raw = np.empty((x.size, EVENT_BYTES), dtype=np.uint8)
    raw[:, 0] = x
    raw[:, 1] = y
    raw[:, 2] = (p << 7) | (t >> 16)
    raw[:, 3] = (t >> 8) & 0xFF
    raw[:, 4] = t & 0xFF
    return raw.tobytes()


def write_nmnist_file(path, events) -> None:
    """Write events to ``path`` in the N-MNIST ``.bin`` format (see :func:`encode_nmnist`)."""
    Path(path).write_bytes(encode_nmnist(events))

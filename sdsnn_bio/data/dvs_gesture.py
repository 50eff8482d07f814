"""DVS-Gesture (Amir et al., CVPR 2017) read from a local folder, in either of its two layouts.

Nothing is downloaded: the folder must already hold one of

**the original release** (``DvsGesture.tar.gz`` extracted; ``ROOT`` or ``ROOT/DvsGesture``)::

    trials_to_train.txt                one recording name per line, e.g. user01_fluorescent.aedat
    trials_to_test.txt
    user01_fluorescent.aedat           AEDAT 3.1 recording of a DVS128 (128 x 128, 2 polarities)
    user01_fluorescent_labels.csv      class,startTime_usec,endTime_usec (class 1-11), one row per gesture
    ...

Every row of a ``_labels.csv`` is one sample: the recording's polarity events with
``startTime_usec <= t < endTime_usec``, times shifted so that the sample starts at ``t = 0``, label
``class - 1``. Users 1-23 are the training trials and 24-29 the test trials in the original lists.

**tonic's processed layout** (what :class:`tonic.datasets.DVSGesture` unpacks; ``ROOT`` or
``ROOT/DVSGesture``)::

    ibmGestureTrain/user01_fluorescent/0.npy ... 10.npy
    ibmGestureTest/user24_fluorescent/...

Each ``<label>.npy`` is one sample, an integer array ``(n, 4)`` with columns ``x, y, p, t`` and
``t`` in milliseconds; it is read as tonic reads it (``t * 1000`` microseconds, times kept as
stored). The ``tonic.datasets.DVSGesture`` class itself is not used because it downloads when its
archive is missing. When a folder holds both layouts the original one is read.

AEDAT 3.1 (iniVation's format specification)
    ASCII header lines starting with ``#``, the first ``#!AER-DAT3.1``, the last ``#!END-HEADER``;
    then packets, each a 28-byte little-endian header::

        int16 eventType     1 = polarity event
        int16 eventSource
        int32 eventSize     bytes per event (8 for polarity events)
        int32 eventTSOffset byte offset of the timestamp in an event (4)
        int32 eventTSOverflow
        int32 eventCapacity events the packet has room for (its data is eventCapacity * eventSize bytes)
        int32 eventNumber   events present (valid and invalid)
        int32 eventValid

    followed by the events. A polarity event is ``uint32 data, int32 timestamp``: bit 0 of ``data`` is
    the validity mark, bit 1 the polarity, bits 2-16 ``y`` and bits 17-31 ``x``; the time in
    microseconds is ``eventTSOverflow << 31 | timestamp``. Packets of other event types (special
    events, frames, IMU samples) are skipped; invalid events are dropped. tonic 1.7's
    ``tonic.io.read_dvs_ibm`` decodes the same bits but fails on every file (it unpacks the three
    values of ``read_aedat_header_from_file`` into two) and reads invalid events and non-polarity
    packets as events, so the decoding here is our own; a test checks it against the bit layout
    that tonic's function uses.

Events are the structured array of :data:`~sdsnn_bio.data.format.EVENT_DTYPE` (``x, y, t, p``), so
tonic transforms (``Downsample``, ``ToFrame``, ``Denoise``) apply to them. Every malformed input
raises :class:`~sdsnn_bio.data.format.DataError` naming the file and what was expected.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .format import EVENT_DTYPE, DataError, MissingDataError, check_events
from .nmnist import balanced_subset

__all__ = [
    "CLASSES",
    "SENSOR_SIZE",
    "GestureSample",
    "GestureDataset",
    "read_aedat31",
    "decode_aedat31",
    "read_gesture_labels",
    "find_gesture_samples",
    "open_dvs_gesture",
]

#: Class names, as :attr:`tonic.datasets.DVSGesture.classes`; the label is the index (CSV class - 1).
CLASSES = (
    "Hand clapping", "Right hand wave", "Left hand wave", "Right arm cw", "Right arm ccw",
    "Left arm cw", "Left arm ccw", "Arm roll", "Air drums", "Air guitar", "Other gestures",
)
#: DVS128 sensor: width, height, polarities.
SENSOR_SIZE = (128, 128, 2)

_HEADER_BYTES = 28
_POLARITY_EVENT = 1
_PACKET = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                    ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])
_POLARITY = np.dtype([("data", "<u4"), ("timestamp", "<i4")])
_LABEL_HEADER = ["class", "startTime_usec", "endTime_usec"]
_TRIALS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
_TONIC_SPLITS = {"train": "ibmGestureTrain", "test": "ibmGestureTest"}
_USER_FOLDER = re.compile(r"^user(\d+)_(\w+)$")
_LAYOUT = (
    "expected the original release (trials_to_train.txt, trials_to_test.txt, user*_*.aedat with "
    "user*_*_labels.csv, in ROOT or ROOT/DvsGesture) or tonic's processed layout "
    "(ibmGestureTrain/ and ibmGestureTest/ of user*_*/<label>.npy, in ROOT or ROOT/DVSGesture)"
)


# ------------------------------------------------------------------------------------ AEDAT 3.1
def _header_end(data: bytes, name: str) -> int:
    """Byte offset of the first packet (just after ``#!END-HEADER``)."""
    first = data[:64].split(b"\n", 1)[0].strip()
    if not first.startswith(b"#!AER-DAT3."):
        raise DataError(
            f"{name}: expected an AEDAT 3.1 file (first line '#!AER-DAT3.1'), got first line "
            f"{first[:40]!r}"
        )
    position = 0
    while position < len(data):
        if data[position:position + 1] != b"#":
            raise DataError(
                f"{name}: expected header lines starting with '#' up to '#!END-HEADER', got a line "
                f"starting {data[position:position + 20]!r} at byte {position}"
            )
        end = data.find(b"\n", position)
        if end < 0:
            break
        line = data[position:end].strip()
        position = end + 1
        if line == b"#!END-HEADER":
            return position
    raise DataError(f"{name}: expected an AEDAT 3.1 header ending with '#!END-HEADER', the file ends first")


def decode_aedat31(data: bytes, name: str = "<bytes>", sensor_size=SENSOR_SIZE) -> np.ndarray:
    """Decode the polarity events of an AEDAT 3.1 file's content.

    Parameters
    ----------
    data : bytes-like
        The whole file.
    name : str
        Where the bytes come from, for error messages.
    sensor_size : (int, int, int)
        ``(width, height, polarities)`` the coordinates must lie in.

    Returns
    -------
    ndarray of EVENT_DTYPE
        Valid polarity events in file order; ``t`` in microseconds.

    Raises
    ------
    DataError
        Wrong first line, no end of header, a truncated packet header or packet, a polarity packet
        whose event size is not 8 bytes or whose timestamp offset is not 4, an event count above the
        capacity, or an address outside the sensor.
    """
    data = bytes(data)
    position = _header_end(data, name)
    chunks = []
    packet_index = 0
    while position < len(data):
        if len(data) - position < _HEADER_BYTES:
            raise DataError(
                f"{name}: packet {packet_index} at byte {position}: expected a 28-byte packet header, "
                f"only {len(data) - position} bytes remain (truncated file)"
            )
        header = np.frombuffer(data, _PACKET, count=1, offset=position)[0]
        size, capacity, number = int(header["size"]), int(header["capacity"]), int(header["number"])
        if size < 1 or capacity < 0 or not 0 <= number <= capacity:
            raise DataError(
                f"{name}: packet {packet_index} at byte {position}: expected eventSize >= 1 and "
                f"0 <= eventNumber <= eventCapacity, got eventSize={size}, eventNumber={number}, "
                f"eventCapacity={capacity}"
            )
        start = position + _HEADER_BYTES
        stop = start + capacity * size
        if stop > len(data):
            raise DataError(
                f"{name}: packet {packet_index} at byte {position}: expected {capacity} events of "
                f"{size} bytes, only {len(data) - start} bytes remain (truncated file)"
            )
        if int(header["type"]) == _POLARITY_EVENT:
            if size != _POLARITY.itemsize or int(header["ts_offset"]) != 4:
                raise DataError(
                    f"{name}: packet {packet_index}: expected polarity events of 8 bytes with the "
                    f"timestamp at offset 4, got eventSize={size}, eventTSOffset={int(header['ts_offset'])}"
                )
            events = np.frombuffer(data, _POLARITY, count=number, offset=start)
            valid = (events["data"] & 1).astype(bool)
            events = events[valid]
            decoded = np.empty(events.size, dtype=EVENT_DTYPE)
            word = events["data"].astype(np.int64)
            decoded["x"] = (word >> 17) & 0x7FFF
            decoded["y"] = (word >> 2) & 0x7FFF
            decoded["p"] = (word >> 1) & 1
            decoded["t"] = (int(header["ts_overflow"]) << 31) | events["timestamp"].astype(np.int64)
            chunks.append(decoded)
        position = stop
        packet_index += 1
    events = np.concatenate(chunks) if chunks else np.zeros(0, dtype=EVENT_DTYPE)
    check_events(events, sensor_size, name=name)
    return events


def read_aedat31(path, sensor_size=SENSOR_SIZE) -> np.ndarray:
    """Read the polarity events of one AEDAT 3.1 file (see :func:`decode_aedat31`)."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: expected an AEDAT 3.1 recording, but no such file exists")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: could not read the AEDAT 3.1 file ({error})") from error
    return decode_aedat31(data, str(path), sensor_size)


def read_gesture_labels(path) -> np.ndarray:
    """Read a DVS-Gesture ``_labels.csv``: one ``(label, start_us, end_us)`` row per gesture.

    Returns
    -------
    ndarray of int64, shape (n, 3)
        ``label = class - 1`` in ``[0, 11)``, start and end times in microseconds.

    Raises
    ------
    MissingDataError
        The file does not exist.
    DataError
        A header other than ``class,startTime_usec,endTime_usec``, a row that is not three
        integers, a class outside 1-11, or ``endTime_usec <= startTime_usec``.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: expected the gesture labels of the recording (class,startTime_usec,"
                               "endTime_usec), but no such file exists")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: could not read the labels file as text ({error})") from error
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows or [cell.strip() for cell in rows[0]] != _LABEL_HEADER:
        raise DataError(f"{path}: expected the header line 'class,startTime_usec,endTime_usec', got "
                        f"{','.join(rows[0]) if rows else 'an empty file'!r}")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        try:
            values = [int(cell.strip()) for cell in row]
        except ValueError:
            values = []
        if len(values) != 3:
            raise DataError(f"{path}, line {line}: expected three integers class,startTime_usec,endTime_usec, "
                            f"got {','.join(row)!r}")
        label, start, end = values
        if not 1 <= label <= len(CLASSES):
            raise DataError(f"{path}, line {line}: expected a class in 1-{len(CLASSES)}, got {label}")
        if start < 0 or end <= start:
            raise DataError(f"{path}, line {line}: expected 0 <= startTime_usec < endTime_usec, got "
                            f"{start} and {end}")
        out.append((label - 1, start, end))
    if not out:
        raise DataError(f"{path}: expected at least one gesture row after the header, got none")
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)


# ------------------------------------------------------------------------------------ layouts
@dataclass(frozen=True)
class GestureSample:
    """Where one gesture sample is stored.

    Attributes
    ----------
    path : str
        The ``.aedat`` recording (original layout) or the ``.npy`` sample (tonic's layout).
    label : int
        Class index 0-10.
    user : int
        Subject number (1-29).
    lighting : str
        Lighting condition (``fluorescent``, ``led``, ``natural``, ...).
    start_us, end_us : int
        The gesture's window in the recording (original layout; ``-1`` for an ``.npy`` sample).
    """

    path: str
    label: int
    user: int
    lighting: str
    start_us: int = -1
    end_us: int = -1

    def __str__(self) -> str:
        if self.start_us < 0:
            return self.path
        return f"{self.path} [{self.start_us}, {self.end_us}) us"


def _user_and_lighting(name: str, where) -> tuple[int, str]:
    match = _USER_FOLDER.match(name)
    if not match:
        raise DataError(f"{where}: expected a name user<NN>_<lighting> (e.g. user01_fluorescent), got {name!r}")
    return int(match.group(1)), match.group(2)


def _original_folder(root: Path) -> Path | None:
    for folder in (root, root / "DvsGesture"):
        if folder.is_dir() and any((folder / name).is_file() for name in _TRIALS.values()):
            return folder
    return None


def _tonic_folder(root: Path) -> Path | None:
    for folder in (root, root / "DVSGesture"):
        if folder.is_dir() and any((folder / name).is_dir() for name in _TONIC_SPLITS.values()):
            return folder
    return None


def _scan_original(folder: Path, split: str) -> list[GestureSample]:
    trials = folder / _TRIALS[split]
    if not trials.is_file():
        raise MissingDataError(f"{trials}: expected the list of {split} recordings of the original release "
                               f"({_LAYOUT})")
    try:
        names = [line.strip() for line in trials.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{trials}: could not read the trial list as text ({error})") from error
    samples = []
    for line, name in enumerate(names, start=1):
        if not name:
            continue
        if not name.endswith(".aedat") or "/" in name or "\\" in name:
            raise DataError(f"{trials}, line {line}: expected a recording file name such as "
                            f"user01_fluorescent.aedat, got {name!r}")
        user, lighting = _user_and_lighting(name[:-len(".aedat")], f"{trials}, line {line}")
        recording = folder / name
        if not recording.is_file():
            raise MissingDataError(f"{recording}: listed in {trials} (line {line}) but no such file exists")
        labels = read_gesture_labels(folder / f"{name[:-len('.aedat')]}_labels.csv")
        samples.extend(GestureSample(str(recording), int(label), user, lighting, int(start), int(end))
                       for label, start, end in labels)
    if not samples:
        raise DataError(f"{trials}: expected at least one recording name, the list is empty")
    return samples


def _scan_tonic(folder: Path, split: str) -> list[GestureSample]:
    split_folder = folder / _TONIC_SPLITS[split]
    if not split_folder.is_dir():
        raise MissingDataError(f"{split_folder}: expected the {split} folder of tonic's processed DVS-Gesture "
                               f"({_LAYOUT})")
    samples = []
    for user_folder in sorted(p for p in split_folder.iterdir() if not p.name.startswith(".")):
        if not user_folder.is_dir():
            raise DataError(f"{user_folder}: expected only user<NN>_<lighting> folders in {split_folder}")
        user, lighting = _user_and_lighting(user_folder.name, split_folder)
        for path in sorted(user_folder.iterdir(), key=lambda p: (len(p.name), p.name)):
            if path.name.startswith("."):
                continue
            stem = path.name[:-len(".npy")] if path.name.endswith(".npy") else ""
            if not stem.isdigit() or not 0 <= int(stem) < len(CLASSES):
                raise DataError(f"{path}: expected samples named <label>.npy with label 0-{len(CLASSES) - 1}, "
                                f"got {path.name!r}")
            samples.append(GestureSample(str(path), int(stem), user, lighting))
    if not samples:
        raise DataError(f"{split_folder}: split {split!r} holds no <label>.npy sample ({_LAYOUT})")
    return samples


def find_gesture_samples(root, split: str) -> tuple[list[GestureSample], str]:
    """List the samples of one split and name the layout found (``"original"`` or ``"tonic"``).

    Raises
    ------
    MissingDataError
        ``root`` does not exist, or a file the layout refers to is missing.
    DataError
        ``root`` holds neither layout, or a file or folder name breaks the layout.
    """
    if not isinstance(split, str) or split.lower() not in _TRIALS:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    split = split.lower()
    root = Path(root).expanduser()
    if not root.exists():
        raise MissingDataError(f"{root}: DVS-Gesture folder does not exist ({_LAYOUT})")
    if not root.is_dir():
        raise DataError(f"{root}: expected a DVS-Gesture folder, got a file ({_LAYOUT})")
    original = _original_folder(root)
    if original is not None:
        return _scan_original(original, split), "original"
    processed = _tonic_folder(root)
    if processed is not None:
        return _scan_tonic(processed, split), "tonic"
    found = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))[:10]
    raise DataError(f"{root}: no DVS-Gesture layout found ({_LAYOUT}); found {found}")


def _read_npy(path: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: could not read the .npy sample ({error})") from error
    if array.ndim != 2 or array.shape[1] != 4 or not (
            np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{path}: expected a numeric array (n, 4) with columns x, y, p, t (ms), got "
                        f"shape {array.shape} of dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise DataError(f"{path}: expected finite values, got NaN or infinity")
    events = np.empty(array.shape[0], dtype=EVENT_DTYPE)
    events["x"], events["y"], events["p"] = array[:, 0], array[:, 1], array[:, 2]
    events["t"] = np.rint(array[:, 3].astype(np.float64) * 1000).astype(np.int64)
    check_events(events, SENSOR_SIZE, name=path)
    if events.size and np.any(events["p"] > 1):
        raise DataError(f"{path}: expected polarities 0 or 1")
    return events


class GestureDataset:
    """DVS-Gesture samples with their labels, read on access (tonic-style dataset).

    Attributes
    ----------
    sensor_size : tuple
        ``(128, 128, 2)``.
    dtype : numpy.dtype
        Event dtype (fields ``x, y, t, p``).
    classes : list of str
    samples : list of GestureSample
    targets : ndarray of int64
        Label of every sample.
    users : ndarray of int64
        Subject of every sample.
    layout : str
        ``"original"`` or ``"tonic"``.
    source : str
        Provenance text.
    """

    sensor_size = SENSOR_SIZE
    dtype = EVENT_DTYPE
    ordering = "xytp"
    classes = list(CLASSES)

    def __init__(self, samples, *, root, split: str, layout: str, transform=None) -> None:
        if transform is not None and not callable(transform):
            raise ValueError(f"transform: expected a callable (e.g. a tonic transform), got {transform!r}")
        self.samples = list(samples)
        self.root = str(root)
        self.split = split
        self.layout = layout
        self.transform = transform
        self.source = f"DVS-Gesture ({layout} layout) at {self.root}"
        self.targets = np.asarray([s.label for s in self.samples], dtype=np.int64)
        self.users = np.asarray([s.user for s in self.samples], dtype=np.int64)
        self._cached: tuple[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return (f"GestureDataset(source={self.source!r}, split={self.split!r}, n={len(self)}, "
                f"transform={self.transform!r})")

    def _recording(self, path: str) -> np.ndarray:
        # Samples are listed recording by recording: keeping the last one read avoids re-decoding it.
        if self._cached is None or self._cached[0] != path:
            self._cached = (path, read_aedat31(path))
        return self._cached[1]

    def read(self, index: int) -> np.ndarray:
        """Events of sample ``index`` (before the transform)."""
        sample = self.samples[index]
        if sample.start_us < 0:
            return _read_npy(sample.path)
        events = self._recording(sample.path)
        t = events["t"]
        cut = events[(t >= sample.start_us) & (t < sample.end_us)].copy()
        cut["t"] -= sample.start_us
        return cut

    def __getitem__(self, index):
        """Return ``(events, label)`` of sample ``index``."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an integer, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} samples")
        index = int(index) % n
        events = self.read(index)
        if self.transform is not None:
            events = self.transform(events)
        return events, int(self.targets[index])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cached"] = None
        return state


def open_dvs_gesture(root, split: str = "train", *, subset: int | None = None, seed=0,
                     transform=None) -> GestureDataset:
    """Open one split of a local DVS-Gesture folder (either layout; see the module docstring).

    Parameters
    ----------
    root : str or os.PathLike
    split : {"train", "test"}
    subset : int, optional
        Class-balanced random subset of this many samples.
    seed : int or numpy.random.Generator
        Randomness of the subset.
    transform : callable, optional
        Applied to each sample's events (e.g. ``tonic.transforms.Downsample``).
    """
    if root is None or str(root) == "":
        raise MissingDataError(f"DVS-Gesture is read from a local folder and never downloaded ({_LAYOUT})")
    samples, layout = find_gesture_samples(root, split)
    if subset is not None:
        samples = [samples[i] for i in balanced_subset([s.label for s in samples], subset, seed)]
    return GestureDataset(samples, root=Path(root).expanduser(), split=split.lower(), layout=layout,
                          transform=transform)

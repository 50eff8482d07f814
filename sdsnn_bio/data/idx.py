"""The IDX file format of MNIST (LeCun, Cortes & Burges, "The MNIST database"), gzip or not.

An IDX file is a big-endian header followed by the array, C order::

    bytes 0-1   zero
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    4*d bytes   size of every dimension (uint32, big-endian)
    the data    prod(sizes) elements of the type (big-endian)

MNIST's image files hold ``(n, 28, 28)`` uint8 (0 = background, 255 = ink), its label files ``(n,)``
uint8 digits. A file whose first two bytes are the gzip magic ``1f 8b`` is decompressed first
(``train-images-idx3-ubyte.gz`` can be read as it is distributed).

:func:`encode_idx` and :func:`write_idx` write the same format (the element type kept, big-endian;
gzip with a zero timestamp, so the same array always gives the same bytes), atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from .format import DataError, MissingDataError

__all__ = ["IDX_TYPES", "decode_idx", "read_idx", "encode_idx", "write_idx", "file_md5"]

#: Element type code of the IDX header -> NumPy dtype (big-endian).
IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
#: Refuse headers announcing more than this many elements (the largest MNIST file holds 47 M).
_MAX_ELEMENTS = 2**32


def decode_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the (already decompressed) bytes of one IDX file.

    Parameters
    ----------
    data : bytes-like
        The whole file content.
    name : str
        Where the bytes come from, used in error messages.

    Returns
    -------
    ndarray
        The array in native byte order, shape as in the header.

    Raises
    ------
    DataError
        If the header is not an IDX header or the data length does not match it.
    """
    data = memoryview(bytes(data))
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DataError(
            f"{name}: expected an IDX file (header 00 00 <type> <ndim>, type one of "
            f"{', '.join(f'0x{k:02X}' for k in IDX_TYPES)}), got {bytes(data[:4]).hex(' ') or 'an empty file'}"
        )
    dtype, ndim = IDX_TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(data) < header:
        raise DataError(f"{name}: IDX header announces {ndim} dimension(s) but the file has {len(data)} bytes")
    shape = tuple(int(v) for v in np.frombuffer(data[4:header], dtype=">u4"))
    n_elements = int(np.prod(shape, dtype=np.int64))
    if n_elements > _MAX_ELEMENTS:
        raise DataError(f"{name}: IDX header announces shape {shape} ({n_elements} elements), more than "
                        f"the {_MAX_ELEMENTS} accepted")
    expected = header + n_elements * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"{name}: IDX header announces shape {shape} of {dtype.name} ({expected} bytes with the header), "
            f"got {len(data)} bytes (truncated or not an IDX file)"
        )
    array = np.frombuffer(data[header:], dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not, recognised by its magic bytes).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    ndarray
        See :func:`decode_idx`.

    Raises
    ------
    MissingDataError
        If the file does not exist.
    DataError
        If it cannot be read, is a broken gzip stream, or is not an IDX file.
    """
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MissingDataError(f"{path}: IDX file does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{path}: expected an IDX file, got a folder") from None
    except OSError as error:
        raise DataError(f"{path}: could not read the IDX file ({error})") from error
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(
                f"{path}: expected a gzip-compressed IDX file, the gzip stream is broken ({error})"
            ) from error
    return decode_idx(raw, str(path))


def encode_idx(array) -> bytes:
    """The bytes of an IDX file holding ``array`` (the inverse of :func:`decode_idx`).

    Parameters
    ----------
    array : array_like
        At least one dimension, of an element type IDX can hold (uint8, int8, int16, int32,
        float32, float64; any byte order).

    Returns
    -------
    bytes
        Header (type code of the array's dtype, number of dimensions, big-endian sizes) and data.

    Raises
    ------
    ValueError
        A scalar, or an element type IDX has no code for.
    """
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"array: IDX holds {', '.join(d.name for d in codes)}, got dtype {array.dtype}")
    if array.ndim < 1 or array.ndim > 255:
        raise ValueError(f"array: IDX holds 1 to 255 dimensions, got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()


def write_idx(path, array, *, compress: bool = True) -> Path:
    """Write ``array`` as an IDX file, atomically (temporary file + rename).

    Parameters
    ----------
    path : str or os.PathLike
        Destination (by convention ending in ``.gz`` when compressed).
    array : array_like
        See :func:`encode_idx`.
    compress : bool
        Gzip the file (zero timestamp: equal arrays give equal files).

    Returns
    -------
    pathlib.Path
        The path written.
    """
    from ..files import atomic_open

    path = Path(path).expanduser()
    content = encode_idx(array)
    if compress:
        content = gzip.compress(content, compresslevel=6, mtime=0)
    with atomic_open(path, "wb") as handle:
        handle.write(content)
    return path


def file_md5(path) -> str:
    """MD5 hex digest of a file's bytes as stored (compressed files are hashed compressed)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""Reading IDX files, the format of MNIST and Fashion-MNIST (LeCun et al., 1998).

An IDX file is a 4-byte magic number ``00 00 TT NN`` (TT: element type, NN: number of
dimensions), NN big-endian uint32 sizes, then the elements, big-endian, in C order. The
files are usually gzip-compressed; compression is detected from the content, not the name.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from archsearch.errors import DataError

#: IDX element type code -> numpy dtype (big-endian, as stored)
IDX_TYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """The array held by the IDX bytes ``raw``, in native byte order and read-only.

    ``source`` names the file in error messages. The size must match the header exactly:
    a short file is truncated and a longer one is not what its header says, so both fail.
    """
    if len(raw) < 4:
        raise DataError(f"{source}: truncated IDX file: {len(raw)} bytes, no 4-byte header")
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\0\0" or code not in IDX_TYPES or ndim == 0:
        magic = int.from_bytes(raw[:4], "big")
        types = ", ".join(f"0x{c:02x}" for c in IDX_TYPES)
        raise DataError(
            f"{source}: bad IDX magic number 0x{magic:08x}; expected 0x0000TTNN with element "
            f"type TT in {types} and NN >= 1 dimensions (e.g. 0x00000803 for images)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{source}: truncated IDX file: {len(raw)} bytes, the header of a {ndim}-dimensional"
            f" array needs {header}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[code])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated IDX file" if len(raw) < expected else "trailing bytes after IDX data"
        raise DataError(
            f"{source}: {problem}: {len(raw)} bytes, header says shape {shape} of {dtype.name}"
            f" ({expected} bytes)"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    if not dtype.isnative and dtype.itemsize > 1:
        array = array.astype(dtype.newbyteorder("="))
    array.flags.writeable = False  # cached and shared: nobody may change it in place
    return array


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """The array in the IDX file ``path`` (gzip-compressed or not), read-only.

    Parsed arrays are cached per file (path, size and modification time), so that every
    evaluator of a study, and every study in a process, reads the 60,000 training images once.
    """
    path = Path(path).expanduser()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read IDX file {path}: {exc.strerror}") from None
    if not path.is_file():
        raise DataError(f"IDX file {path} is not a regular file")
    return _read_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=16)
def _read_cached(path: str, size: int, mtime_ns: int) -> np.ndarray:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read IDX file {path}: {exc.strerror}") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    return parse_idx(raw, path)


def write_idx(path: str | os.PathLike[str], array: np.ndarray, compress: bool = True) -> None:
    """Write ``array`` as an IDX file (gzip-compressed unless ``compress`` is False).

    The inverse of :func:`read_idx`; tests and users with their own MNIST-like data use it.
    """
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes or array.ndim == 0 or array.ndim > 255:
        kinds = sorted(str(np.dtype(v).newbyteorder("=")) for v in IDX_TYPES.values())
        raise DataError(
            f"cannot write a {array.ndim}-dimensional {array.dtype} array as IDX; "
            f"element types: {kinds}, 1 to 255 dimensions"
        )
    header = bytes([0, 0, codes[native], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    body = array.astype(IDX_TYPES[codes[native]], copy=False).tobytes(order="C")
    data = header + body
    Path(path).write_bytes(gzip.compress(data, mtime=0) if compress else data)

"""A fast reader for the header of a GGUF file (metadata and tensor table, no tensor data).

``gguf.GGUFReader`` builds a numpy view per array element and takes 10-27 s on the
128k-262k vocabularies of current models; this reader walks the header once with
``struct`` (and ``numpy.frombuffer`` for numeric arrays) and reads such a header in
about a tenth of a second. It also records where each key/value pair lies in the file,
so a test fixture can copy a tokenizer byte for byte (see :mod:`rpra_agent.testing.gguf`).

Layout (GGUF v2/v3, little-endian)::

    "GGUF" u32 version, u64 n_tensors, u64 n_kv,
    n_kv x (string key, u32 type, value),
    n_tensors x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset),
    padding to general.alignment (32), tensor data.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GGUFFormatError", "GGUFHeader", "TensorInfo", "read_gguf_header"]

MAGIC = b"GGUF"
STRING, ARRAY = 8, 9
_SKIP = ("tokenizer.ggml.merges", "tokenizer.ggml.scores")  # large arrays nobody here reads
_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_NUMPY: dict[int, str] = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1", 10: "<u8", 11: "<i8", 12: "<f8"}  # fmt: skip


class GGUFFormatError(ValueError):
    """The bytes are not a well-formed GGUF header (the message says where)."""


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table.

    Attributes:
        name: Tensor name (e.g. ``token_embd.weight``).
        shape: Dimensions, innermost first (as stored).
        ggml_type: The ggml type id (0 F32, 1 F16, ...).
        offset: Offset of its data from the start of the data section.
    """

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int


@dataclass(frozen=True)
class GGUFHeader:
    """A parsed GGUF header.

    Attributes:
        version: GGUF version.
        fields: Metadata values: strings decoded, numeric arrays as numpy arrays,
            string arrays as lists of raw UTF-8 ``bytes`` (decode what you need),
            and ``None`` for the merges and scores arrays, which are skipped.
        spans: Byte range ``(start, end)`` of each key/value pair in the file.
        types: GGUF value type of each key.
        tensors: The tensor table.
        data_offset: Where the tensor data starts.
        alignment: ``general.alignment`` (32 by default).
    """

    version: int
    fields: dict[str, Any]
    spans: dict[str, tuple[int, int]]
    types: dict[str, int]
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0
    alignment: int = 32


class _Cursor:
    def __init__(self, buf: Any) -> None:
        self.buf, self.pos = buf, 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise GGUFFormatError(f"header ends early at byte {self.pos}")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.take("<Q")
        end = self.pos + n
        if end > len(self.buf):
            raise GGUFFormatError(f"a string at byte {self.pos} runs past the end of the file")
        raw = self.buf[self.pos : end]
        self.pos = end
        return raw.decode("utf-8", errors="replace")

    def strings(self, n: int, *, keep: bool) -> list[bytes] | None:
        out: list[bytes] = []
        buf, pos, size = self.buf, self.pos, len(self.buf)
        unpack = struct.Struct("<Q").unpack_from
        for _ in range(n):
            if pos + 8 > size:
                raise GGUFFormatError(f"a string array runs past the end of the file at byte {pos}")
            (length,) = unpack(buf, pos)
            pos += 8 + length
            if keep:
                out.append(buf[pos - length : pos])
        if pos > size:
            raise GGUFFormatError("a string array runs past the end of the file")
        self.pos = pos
        return out if keep else None

    def value(self, vtype: int, *, keep: bool) -> Any:
        if vtype == STRING:
            return self.string()
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype != ARRAY:
            raise GGUFFormatError(f"unknown value type {vtype} at byte {self.pos}")
        itype, n = self.take("<I"), self.take("<Q")
        if itype == STRING:
            return self.strings(n, keep=keep)
        if itype in _NUMPY:
            size = np.dtype(_NUMPY[itype]).itemsize * n
            if self.pos + size > len(self.buf):
                raise GGUFFormatError(f"an array at byte {self.pos} runs past the end of the file")
            arr = np.frombuffer(self.buf, dtype=_NUMPY[itype], count=n, offset=self.pos).copy() if keep else None
            self.pos += size
            return arr
        return [self.value(itype, keep=keep) for _ in range(n)]


def read_gguf_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """Parse the metadata and tensor table of a GGUF file.

    Reads only the header (the first megabytes), never the tensor data.

    Args:
        path: The file.

    Returns:
        The header.

    Raises:
        GGUFFormatError: On a wrong magic, an unknown version or value type, or a
            header that runs past the end of the file.
        OSError: When the file cannot be read.
    """
    with Path(path).open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 24:
            raise GGUFFormatError(f"the file has {size} bytes, too few for a GGUF header")
        chunk = 32 << 20
        while True:
            fh.seek(0)
            data = fh.read(min(size, chunk))
            try:
                return _parse(data)
            except GGUFFormatError:
                if len(data) >= size:
                    raise
                chunk *= 4


def _parse(buf: bytes) -> GGUFHeader:
    cur = _Cursor(buf)
    if bytes(buf[:4]) != MAGIC:
        raise GGUFFormatError(f"the file starts with {bytes(buf[:4])!r}, not b'GGUF'")
    cur.pos = 4
    version = cur.take("<I")
    if version not in (2, 3):
        raise GGUFFormatError(f"unsupported GGUF version {version} (llama.cpp reads 2 and 3)")
    n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
    if n_kv > 1_000_000 or n_tensors > 1_000_000:
        raise GGUFFormatError(f"implausible counts: {n_kv} key/values, {n_tensors} tensors")
    fields: dict[str, Any] = {}
    spans: dict[str, tuple[int, int]] = {}
    types: dict[str, int] = {}
    for _ in range(n_kv):
        start = cur.pos
        key = cur.string()
        vtype = cur.take("<I")
        fields[key] = cur.value(vtype, keep=not key.startswith(_SKIP))
        spans[key], types[key] = (start, cur.pos), vtype
    tensors = []
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.take("<I")
        if n_dims > 8:
            raise GGUFFormatError(f"tensor {name!r} has {n_dims} dimensions")
        shape = tuple(int(cur.take("<Q")) for _ in range(n_dims))
        tensors.append(TensorInfo(name, shape, int(cur.take("<I")), int(cur.take("<Q"))))
    alignment = int(fields.get("general.alignment", 32) or 32)
    data_offset = -(-cur.pos // alignment) * alignment
    return GGUFHeader(version, fields, spans, types, tensors, data_offset, alignment)

"""A reader of TensorFlow's *tensor bundle* checkpoints in numpy and the standard library.

A TensorFlow 1 checkpoint saved under a prefix ``P`` is two files:

``P.index``
    An SSTable (LevelDB's table format, as written by ``tensorflow/core/lib/io/table_builder``):
    data blocks of prefix-compressed ``key -> value`` entries, an index block pointing at
    them, a metaindex block and a 48-byte footer ending in the magic number
    ``0xdb4775248b80fb57``. Every block is followed by a 5-byte trailer: the compression type
    (0 = none; 1 = snappy, not supported here) and the masked CRC-32C of block + type byte.
    The entry with the empty key is a ``BundleHeaderProto`` (number of shards, endianness);
    every other key is a tensor name whose value is a ``BundleEntryProto``: dtype, shape,
    shard, offset and size in the data file and the masked CRC-32C of the tensor's bytes.
``P.data-00000-of-0000N``
    The tensors' raw bytes, back to back (one file per shard).

Only what checkpoints of plain numeric tensors use is read: uncompressed blocks, numeric
dtypes, whole tensors (no ``slices``). Anything else is refused with a
:class:`TensorBundleError` naming the file, never read wrongly. Every block and every tensor
read is checked against its CRC-32C.

References: ``tensorflow/core/util/tensor_bundle/tensor_bundle.{h,cc,proto}`` and
``tensorflow/core/lib/io/format.cc`` (the table format).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from songsim.errors import TensorBundleError

__all__ = ["BundleEntry", "TensorBundle", "TensorBundleError", "crc32c", "read_bundle"]


#: the last 8 bytes of every SSTable (``kTableMagicNumber``)
TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # 2 block handles of at most 20 bytes each, padded, + the 8-byte magic
BLOCK_TRAILER_SIZE = 5  # compression type byte + fixed32 masked CRC-32C

#: TensorFlow ``DataType`` enum value -> numpy dtype (little-endian); DT_STRING (7) and the
#: quantised and resource types are not handled
TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}


# ============================================================================================
# CRC-32C (Castagnoli), as TensorFlow and LevelDB compute and mask it


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C (Castagnoli polynomial, reflected) of ``data``; ``crc32c(b"123456789") ==
    0xE3069283``. Plain Python: about 0.1 s per MB."""
    table = _CRC32C_TABLE
    crc = 0xFFFFFFFF
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _unmask(masked: int) -> int:
    """Inverse of LevelDB's ``crc32c::Mask`` (``((crc >> 15) | (crc << 17)) + 0xa282ead8``)."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ============================================================================================
# wire formats


def _varint(buffer: bytes, pos: int, where: str) -> tuple[int, int]:
    """A base-128 varint at ``pos``: ``(value, next position)``."""
    value = 0
    shift = 0
    while True:
        if pos >= len(buffer) or shift > 63:
            raise ValueError(f"truncated varint in {where}")
        byte = buffer[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _protobuf_fields(buffer: bytes, where: str) -> list[tuple[int, int | bytes]]:
    """The ``(field number, value)`` pairs of a serialised protobuf message: an int for
    varint and fixed-size fields, bytes for length-delimited ones."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buffer):
        tag, pos = _varint(buffer, pos, where)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, pos = _varint(buffer, pos, where)
        elif wire_type == 1:
            value = int.from_bytes(buffer[pos:pos + 8], "little")
            pos += 8
        elif wire_type == 2:
            length, pos = _varint(buffer, pos, where)
            value = bytes(buffer[pos:pos + length])
            pos += length
        elif wire_type == 5:
            value = int.from_bytes(buffer[pos:pos + 4], "little")
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type} in {where}")
        if pos > len(buffer):
            raise ValueError(f"truncated protobuf field {number} in {where}")
        fields.append((number, value))
    return fields


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives (a parsed ``BundleEntryProto``).

    Attributes
    ----------
    name : str
        The variable's name, e.g. ``"conv2d/kernel"``.
    dtype : np.dtype
        Its element type (little-endian).
    shape : tuple of int
        Its shape, as TensorFlow stores it (a conv2d kernel is ``(height, width, in, out)``).
    shard_id, offset, size : int
        Data file, byte offset and byte count of its values.
    crc32c : int
        CRC-32C of those bytes (unmasked).
    """

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int


def _parse_shape(buffer: bytes, where: str) -> tuple[int, ...]:
    dims = []
    for number, value in _protobuf_fields(buffer, where):
        if number == 2:  # repeated Dim {int64 size = 1; string name = 2}
            size = 0
            for dim_number, dim_value in _protobuf_fields(value, where):  # type: ignore[arg-type]
                if dim_number == 1:
                    size = dim_value - (1 << 64) if dim_value >= 1 << 63 else dim_value  # type: ignore[operator]
            if size < 0:
                raise ValueError(f"unknown dimension in the shape of {where}")
            dims.append(int(size))
        elif number == 3 and value:  # unknown_rank
            raise ValueError(f"unknown rank in the shape of {where}")
    return tuple(dims)


def _parse_entry(name: str, buffer: bytes) -> BundleEntry:
    where = f"the entry of {name!r}"
    dtype_code, shape, shard_id, offset, size, crc = 0, (), 0, 0, 0, None
    for number, value in _protobuf_fields(buffer, where):
        if number == 1:
            dtype_code = int(value)  # type: ignore[arg-type]
        elif number == 2:
            shape = _parse_shape(value, where)  # type: ignore[arg-type]
        elif number == 3:
            shard_id = int(value)  # type: ignore[arg-type]
        elif number == 4:
            offset = int(value)  # type: ignore[arg-type]
        elif number == 5:
            size = int(value)  # type: ignore[arg-type]
        elif number == 6:
            crc = _unmask(int(value))  # type: ignore[arg-type]
        elif number == 7:
            raise ValueError(f"{name!r} is stored in slices (a partitioned variable), which this reader does not handle")
    if dtype_code not in TF_DTYPES:
        raise ValueError(f"{name!r} has TensorFlow dtype {dtype_code}, which this reader does not handle (numeric dtypes only)")
    dtype = TF_DTYPES[dtype_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size != expected:
        raise ValueError(f"{name!r}: {size} bytes stored for shape {shape} of {dtype} ({expected} expected)")
    if crc is None:
        raise ValueError(f"{name!r} has no checksum")
    return BundleEntry(name, dtype, tuple(shape), shard_id, offset, size, crc)


# ============================================================================================
# the SSTable


def _read_block(table: bytes, offset: int, size: int, where: str) -> bytes:
    """The contents of the block at ``offset`` (``size`` bytes, then its 5-byte trailer),
    checked against its CRC; only uncompressed blocks."""
    end = offset + size + BLOCK_TRAILER_SIZE
    if end > len(table) - FOOTER_SIZE:  # every block precedes the footer
        raise ValueError(f"a block handle points outside the file (bytes {offset}..{end} of {len(table)})")
    contents = table[offset:offset + size]
    compression = table[offset + size]
    stored = _unmask(int.from_bytes(table[offset + size + 1:end], "little"))
    if crc32c(table[offset:offset + size + 1]) != stored:
        raise ValueError(f"the block at byte {offset} fails its CRC-32C check (a damaged file)")
    if compression != 0:
        raise ValueError(f"the block at byte {offset} is compressed (type {compression}); only uncompressed tables are handled")
    return contents


def _block_entries(block: bytes, where: str) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` entries of one block (keys prefix-compressed against the previous)."""
    if len(block) < 4:
        raise ValueError(f"a block of {len(block)} bytes in {where}")
    n_restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 * (1 + n_restarts)
    if limit < 0:
        raise ValueError(f"a block with {n_restarts} restart points does not fit its {len(block)} bytes in {where}")
    entries = []
    key = b""
    pos = 0
    while pos < limit:
        shared, pos = _varint(block, pos, where)
        unshared, pos = _varint(block, pos, where)
        value_length, pos = _varint(block, pos, where)
        if shared > len(key) or pos + unshared + value_length > limit:
            raise ValueError(f"a corrupt entry at byte {pos} of a block in {where}")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        entries.append((key, block[pos:pos + value_length]))
        pos += value_length
    return entries


def _table_entries(table: bytes, where: str) -> list[tuple[bytes, bytes]]:
    """Every ``(key, value)`` of an SSTable, in key order."""
    if len(table) < FOOTER_SIZE:
        raise ValueError(f"{len(table)} bytes, shorter than an SSTable footer ({FOOTER_SIZE})")
    footer = table[-FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
        raise ValueError("no SSTable magic number at its end (not a TensorFlow checkpoint index)")
    _, pos = _varint(footer, 0, where)  # the metaindex handle: nothing in it is needed
    _, pos = _varint(footer, pos, where)
    index_offset, pos = _varint(footer, pos, where)
    index_size, pos = _varint(footer, pos, where)
    entries = []
    for _, handle in _block_entries(_read_block(table, index_offset, index_size, where), where):
        block_offset, pos = _varint(handle, 0, where)
        block_size, _ = _varint(handle, pos, where)
        entries.extend(_block_entries(_read_block(table, block_offset, block_size, where), where))
    return entries


# ============================================================================================
# the bundle


class TensorBundle:
    """A TensorFlow checkpoint opened for reading: the index parsed, the values read on demand.

    Parameters
    ----------
    prefix : str or path-like
        The checkpoint prefix ``P`` (the files are ``P.index`` and ``P.data-*``). A prefix
        that is a folder path ending in ``/`` (as in ``musicnn``'s ``MSD_musicnn/``) names
        the files ``.index`` and ``.data-00000-of-00001`` inside it.

    Raises
    ------
    TensorBundleError
        The index is missing or unreadable, or holds what this reader does not handle.
    """

    def __init__(self, prefix: str | os.PathLike) -> None:
        self.prefix = str(prefix)
        self.index_path = Path(self.prefix + ".index")
        try:
            table = self.index_path.read_bytes()
        except OSError as error:
            raise TensorBundleError(
                f"{self.index_path}: cannot read the checkpoint index ({error.strerror or error}). "
                "Reinstall the package that ships it (for MusiCNN: pip install --no-deps -r requirements-models.txt)."
            ) from error
        try:
            entries = _table_entries(table, str(self.index_path))
            header = dict(_protobuf_fields(entries[0][1], "the bundle header")) if entries and entries[0][0] == b"" else None
            if header is None:
                raise ValueError("no bundle header (the entry with the empty key)")
            self.n_shards = int(header.get(1, 1))  # type: ignore[arg-type]
            if int(header.get(2, 0)) != 0:  # type: ignore[arg-type]
                raise ValueError("a big-endian checkpoint, which this reader does not handle")
            self.entries: dict[str, BundleEntry] = {}
            for key, value in entries[1:]:
                name = key.decode("utf-8")
                self.entries[name] = _parse_entry(name, value)
        except (ValueError, UnicodeDecodeError, IndexError) as error:
            raise TensorBundleError(
                f"{self.index_path}: not a TensorFlow checkpoint index this reader can use ({error}). "
                "Reinstall the package that ships it (for MusiCNN: pip install --no-deps -r requirements-models.txt)."
            ) from error
        for entry in self.entries.values():
            if not 0 <= entry.shard_id < self.n_shards:
                raise TensorBundleError(f"{self.index_path}: {entry.name!r} is in shard {entry.shard_id} of {self.n_shards}.")

    def data_path(self, shard_id: int = 0) -> Path:
        """The data file of ``shard_id``: ``P.data-00000-of-00001`` for a single shard."""
        return Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.n_shards:05d}")

    def names(self) -> list[str]:
        """Every tensor name, in the index's (sorted) order."""
        return list(self.entries)

    def read(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """The values of ``names`` (default: every tensor), each checked against its CRC-32C.

        Returns
        -------
        dict of str -> np.ndarray
            Each with the stored dtype and shape (native byte order, writable, owned).
        """
        wanted = self.names() if names is None else list(names)
        missing = [name for name in wanted if name not in self.entries]
        if missing:
            raise TensorBundleError(
                f"{self.index_path}: no tensor {', '.join(map(repr, missing[:5]))} in this checkpoint "
                f"(it holds {len(self.entries)}, e.g. {', '.join(self.names()[:3])}): is it the right model?"
            )
        values: dict[str, np.ndarray] = {}
        by_shard: dict[int, list[BundleEntry]] = {}
        for name in wanted:
            by_shard.setdefault(self.entries[name].shard_id, []).append(self.entries[name])
        for shard_id, shard_entries in by_shard.items():
            path = self.data_path(shard_id)
            try:
                with open(path, "rb") as handle:
                    file_size = os.fstat(handle.fileno()).st_size
                    for entry in sorted(shard_entries, key=lambda e: e.offset):
                        if entry.offset + entry.size > file_size:
                            raise TensorBundleError(
                                f"{path}: {entry.name!r} lies at bytes {entry.offset}..{entry.offset + entry.size}, "
                                f"past the end of the {file_size}-byte file (truncated). Reinstall the package that ships it."
                            )
                        handle.seek(entry.offset)
                        raw = handle.read(entry.size)
                        if crc32c(raw) != entry.crc32c:
                            raise TensorBundleError(
                                f"{path}: {entry.name!r} fails its CRC-32C check (a damaged file). "
                                "Reinstall the package that ships it."
                            )
                        array = np.frombuffer(raw, dtype=entry.dtype).reshape(entry.shape)
                        values[entry.name] = array.astype(entry.dtype.newbyteorder("="), copy=True)
            except OSError as error:
                raise TensorBundleError(
                    f"{path}: cannot read the checkpoint data ({error.strerror or error}). "
                    "Reinstall the package that ships it (for MusiCNN: pip install --no-deps -r requirements-models.txt)."
                ) from error
        return {name: values[name] for name in wanted}


def read_bundle(prefix: str | os.PathLike, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every tensor (or those in ``names``) of the TensorFlow checkpoint at ``prefix``:
    ``TensorBundle(prefix).read(names)``."""
    return TensorBundle(prefix).read(names)

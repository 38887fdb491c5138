"""The sparse file's container: a fixed preamble, a compressed JSON header, then compressed buffers. No pickle.

Layout (little-endian)::

    b"WBSPARSE"          8 bytes, the magic
    version              uint16 (FORMAT_VERSION)
    header size          uint32, compressed
    header raw size      uint32, the JSON's
    payload size         uint64
    SHA-256              32 bytes, of header + payload
    header               UTF-8 JSON, LZMA2-compressed
    payload              the buffers back to back, each compressed on its own, in the order the header lists them

Every buffer (and the header) is raw LZMA2 (stdlib ``lzma``, ``FORMAT_RAW``, preset 6, 1 MiB dictionary, no
literal context: lc = lp = pb = 0 suited every buffer we measured; preset 9 "extreme" saved under 0.1 % and took
a quarter longer), or stored as it is when that is no smaller; each buffer on its own, so its stored size is
exactly what it adds to the file. Reading checks, in order: the magic, the version, the sizes (truncated or
trailing bytes), the checksum; only then does it decompress, never past the sizes the header declares. Every
refusal is a one-line ValueError naming the file.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "two.sparse"
    >>> stored = [compress(bytes(1000)), compress(b"abc")]  # 1000 zeros shrink, 3 bytes do not
    >>> [codec for codec, _, _ in stored]
    ['lzma', 'raw']
    >>> write_atomically(path, pack({"note": "hi"}, stored))
    >>> header, buffers = unpack(path)
    >>> header["note"], [len(raw) for raw in buffers.read([(codec, len(data), size) for codec, data, size in stored])]
    ('hi', [1000, 3])
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import struct
import tempfile
from pathlib import Path

from .structure.saving import os_error_reason

MAGIC = b"WBSPARSE"
FORMAT_VERSION = 1
PREAMBLE = struct.Struct("<8sHIIQ32s")
DICT_SIZE = 1 << 20
_ENCODER = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": DICT_SIZE, "lc": 0, "lp": 0, "pb": 0}]
_DECODER = [{"id": lzma.FILTER_LZMA2, "dict_size": DICT_SIZE}]
Stored = tuple[str, bytes, int]  # codec ("lzma" or "raw"), the stored bytes, the raw size


class Damaged(Exception):
    """A file part that passed the checksum but does not make sense (written by something else, or a bug)."""


def compress(raw: bytes) -> Stored:
    """``raw`` compressed, or as it is when compressing does not make it smaller."""
    packed = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_ENCODER)
    return ("lzma", packed, len(raw)) if len(packed) < len(raw) else ("raw", raw, len(raw))


def decompress(codec: str, data: bytes, size: int) -> bytes:
    """What ``compress`` stored as ``data``, checked to be ``size`` bytes; ``Damaged`` when it is not."""
    if codec == "raw":
        raw = data
    elif codec == "lzma":
        try:
            decompressor = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=_DECODER)
            raw = decompressor.decompress(data, max_length=size)
        except lzma.LZMAError as error:
            raise Damaged(f"has a buffer that does not decompress ({error})") from None
        if not decompressor.eof or decompressor.unused_data:
            raise Damaged("has a buffer that does not end where its stored size says")
    else:
        raise Damaged(f"has a buffer in codec {codec!r}; this workbench reads lzma and raw")
    if len(raw) != size:
        raise Damaged(f"has a buffer of {len(raw):,} bytes where its header says {size:,}")
    return raw


def pack(header: dict, buffers: list[Stored]) -> bytes:
    """The file's bytes: preamble, compressed ``header`` (JSON), then the stored ``buffers``' bytes back to back."""
    text = json.dumps(header, separators=(",", ":")).encode()
    header_bytes = lzma.compress(text, format=lzma.FORMAT_RAW, filters=_ENCODER)
    payload = b"".join(data for _, data, _ in buffers)
    digest = hashlib.sha256(header_bytes + payload).digest()
    preamble = PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(header_bytes), len(text), len(payload), digest)
    return preamble + header_bytes + payload


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it: ``path`` is never left half-written.
    The file gets the permissions an ordinary new file would (0666 less the umask), not mkstemp's private 0600."""
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    except OSError as error:
        raise ValueError(f"{path} cannot be written: {os_error_reason(error)}") from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise ValueError(f"{path} cannot be written: {os_error_reason(error)}") from None


class Buffers:
    """The payload of a checked file, read buffer by buffer in the header's order."""

    def __init__(self, payload: memoryview):
        self.payload, self.offset = payload, 0

    def read(self, stored: list[tuple[str, int, int]]) -> list[bytes]:
        """The raw bytes of the next buffers, each ``(codec, stored size, raw size)``; ``Damaged`` on a misfit."""
        raws = []
        for entry in stored:
            if len(entry) != 3 or not all(type(number) is int and number >= 0 for number in entry[1:]):
                raise Damaged(f"has a buffer entry {list(entry)!r}, not [codec, stored size, raw size]")
            codec, length, size = entry
            if length > len(self.payload) - self.offset:
                raise Damaged("has a buffer that runs past the end of the payload")
            raws.append(decompress(codec, bytes(self.payload[self.offset : self.offset + length]), size))
            self.offset += length
        return raws

    def check_used_up(self) -> None:
        if self.offset != len(self.payload):
            raise Damaged(f"its payload has {len(self.payload) - self.offset:,} bytes that belong to no tensor")


def unpack(path: Path) -> tuple[dict, Buffers]:
    """The header and payload of the sparse file at ``path``, or a one-line ValueError saying what is wrong."""
    try:
        data = memoryview(path.read_bytes())
    except OSError as error:
        raise ValueError(f"{path} cannot be read: {os_error_reason(error)}") from None
    if not data:
        raise ValueError(f"{path} is empty: it holds no model")
    start = bytes(data[: len(MAGIC)])
    if not MAGIC.startswith(start):
        raise ValueError(f"{path} is not a sparse model file: save_sparse files start with {MAGIC.decode()}")
    if len(data) < PREAMBLE.size:
        raise ValueError(f"{path} is truncated: {len(data):,} bytes, shorter than the {PREAMBLE.size}-byte preamble")
    _, version, header_size, header_raw_size, payload_size, digest = PREAMBLE.unpack_from(data)
    if version != FORMAT_VERSION:
        newer = "a newer workbench wrote it" if version > FORMAT_VERSION else "it is damaged"
        raise ValueError(
            f"{path} is in sparse format version {version}; this workbench reads {FORMAT_VERSION} ({newer})"
        )
    expected = PREAMBLE.size + header_size + payload_size
    if len(data) < expected:
        raise ValueError(f"{path} is truncated: {len(data):,} bytes of the {expected:,} its preamble declares")
    if len(data) > expected:
        raise ValueError(f"{path} has {len(data) - expected:,} bytes after the {expected:,} its preamble declares")
    if hashlib.sha256(data[PREAMBLE.size :]).digest() != digest:
        raise ValueError(f"{path} is damaged: its checksum does not match its contents (changed after saving)")
    try:
        text = decompress("lzma", bytes(data[PREAMBLE.size : PREAMBLE.size + header_size]), header_raw_size)
        header = json.loads(text)
    except (Damaged, UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path} is damaged: its header is not compressed JSON") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path} is damaged: its header is a JSON {type(header).__name__}, not an object")
    return header, Buffers(data[PREAMBLE.size + header_size :])

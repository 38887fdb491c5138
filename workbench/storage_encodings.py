"""How a sparse file stores one tensor: its values as little-endian byte planes, its mask in one of three encodings.

Values are the tensor's bit patterns (bit-exact: -0.0 and NaN payloads survive), written as byte planes
(every element's first byte, then every second byte, …): the sign-and-exponent bytes of trained weights
repeat a lot, and a compressor finds that when they sit together. A mask says which elements are kept:

* ``bitmask``: one bit per element, packed 8 to a byte;
* ``indices``: per kept element, how many elements were skipped before it, in the smallest unsigned int
  that holds the largest gap;
* ``nm``: for an N:M mask (N kept of every M consecutive inputs, as ``wb.prune(pattern="2:4")`` makes),
  per group the positions of its N kept inputs, ``ceil(log2 M)`` bits each (2 bits for 2:4).

Decoders check what they read against the tensor's shape and raise ValueError saying what does not fit.

Example:
    >>> mask = torch.tensor([[True, True, False, False], [False, True, False, True]])
    >>> [len(MASK_ENCODINGS[name].encode(mask)[0]) for name in ("bitmask", "indices", "nm")]  # bytes
    [1, 4, 1]
    >>> data, params = MASK_ENCODINGS["nm"].encode(mask)
    >>> params, torch.equal(MASK_ENCODINGS["nm"].decode(data, (2, 4), params), mask)
    ({'n': 2, 'm': 4}, True)
    >>> values = torch.tensor([1.0, -0.0, float("nan")])
    >>> to_bytes(values).hex(" ", 3)  # three low bytes, three next, …, three sign-and-exponent bytes
    '000000 000000 8000c0 3f807f'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

DTYPES = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.float32,
        torch.float64,
        torch.float16,
        torch.bfloat16,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
    )
}  # the dtypes a sparse file holds, by the name its header uses
_SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
MAX_GROUP = 16  # the largest M the nm encoding looks for


def dtype_named(name: str) -> torch.dtype:
    """The torch dtype a header names, or a ValueError listing those a sparse file holds."""
    if name not in DTYPES:
        raise ValueError(f"has dtype {name!r}; a sparse file holds {', '.join(DTYPES)}")
    return DTYPES[name]


def to_bytes(tensor: torch.Tensor) -> bytes:
    """The elements' bit patterns, little-endian, as byte planes (all first bytes, then all second bytes, …)."""
    size = tensor.element_size()
    flat = tensor.detach().cpu().contiguous().reshape(-1).view(_SAME_SIZE_INT[size]).numpy()
    little = flat.astype(flat.dtype.newbyteorder("<"), copy=False)
    return little.view(np.uint8).reshape(-1, size).T.tobytes()


def from_bytes(data: bytes, dtype: torch.dtype, count: int) -> torch.Tensor:
    """The ``count`` elements of ``dtype`` that ``to_bytes`` wrote as ``data`` (1-D)."""
    size = torch.empty(0, dtype=dtype).element_size()
    if len(data) != count * size:
        raise ValueError(f"holds {len(data):,} bytes of values where {count:,} × {size} were expected")
    planes = np.frombuffer(data, np.uint8).reshape(size, count).T.copy()
    native = np.dtype(f"u{size}")
    return torch.from_numpy(planes.view(native.newbyteorder("<")).astype(native).reshape(-1)).view(dtype)


def bit_patterns_nonzero(tensor: torch.Tensor) -> torch.Tensor:
    """Where ``tensor``'s bits are not all zero: -0.0 counts as a value, +0.0 does not."""
    return tensor.detach().cpu().contiguous().view(_SAME_SIZE_INT[tensor.element_size()]) != 0


@dataclass(frozen=True)
class MaskEncoding:
    """One way to write a bool mask: ``encode(mask) -> (bytes, params)`` (None where it does not fit the mask),
    ``decode(bytes, shape, params) -> mask``."""

    name: str
    description: str
    encode: Callable[[torch.Tensor], tuple[bytes, dict] | None]
    decode: Callable[[bytes, tuple[int, ...], dict], torch.Tensor]


def _bits(values: np.ndarray, width: int) -> bytes:
    """Each value's ``width`` low bits, least significant first, packed 8 to a byte."""
    bits = (values.reshape(-1, 1).astype(np.uint64) >> np.arange(width, dtype=np.uint64)) & 1
    return np.packbits(bits.astype(np.uint8).reshape(-1), bitorder="little").tobytes()


def _unbits(data: bytes, width: int, count: int) -> np.ndarray:
    """The ``count`` values of ``width`` bits that ``_bits`` packed into ``data``."""
    if len(data) != -(-count * width // 8):
        raise ValueError(f"has {len(data):,} bytes of mask where {count * width:,} bits were expected")
    bits = np.unpackbits(np.frombuffer(data, np.uint8), count=count * width, bitorder="little")
    return (bits.reshape(count, width).astype(np.int64) << np.arange(width)).sum(axis=1)


def _encode_bitmask(mask: torch.Tensor) -> tuple[bytes, dict]:
    return _bits(mask.reshape(-1).numpy(), 1), {}


def _decode_bitmask(data: bytes, shape: tuple[int, ...], params: dict) -> torch.Tensor:
    return torch.from_numpy(_unbits(data, 1, math.prod(shape)).astype(bool)).view(shape)


def _encode_indices(mask: torch.Tensor) -> tuple[bytes, dict]:
    gaps = np.diff(np.flatnonzero(mask.reshape(-1).numpy()), prepend=-1) - 1  # elements skipped before each kept one
    width = next(size for size in (1, 2, 4, 8) if gaps.max(initial=0) < 256**size)
    return to_bytes(torch.from_numpy(gaps.astype(f"i{width}"))), {"gap_bytes": width}


def _decode_indices(data: bytes, shape: tuple[int, ...], params: dict) -> torch.Tensor:
    width, numel = params["gap_bytes"], math.prod(shape)
    if width not in _SAME_SIZE_INT or len(data) % width:
        raise ValueError(f"has indices of {width!r} bytes, or {len(data):,} bytes that are not a whole number of them")
    gaps = from_bytes(data, _SAME_SIZE_INT[width], len(data) // width).numpy().astype(np.uint64)
    if gaps.size and gaps.max() >= numel:
        raise ValueError(f"has an index gap of {int(gaps.max()):,} in a tensor of {numel:,} elements")
    positions = np.cumsum(gaps + 1).astype(np.int64) - 1
    if positions.size and positions[-1] >= numel:
        raise ValueError(f"has indices up to {int(positions[-1]):,} in a tensor of {numel:,} elements")
    mask = np.zeros(numel, dtype=bool)
    mask[positions] = True
    return torch.from_numpy(mask).view(shape)


def _grouped(mask: torch.Tensor, m: int) -> torch.Tensor:
    """Groups of ``m`` consecutive inputs at the same output and kernel position, one per row (as ``wb.prune``)."""
    return mask.movedim(1, -1).reshape(-1, m)


def nm_pattern(mask: torch.Tensor) -> tuple[int, int] | None:
    """``(n, m)`` with the smallest ``m`` such that every group of ``m`` consecutive inputs keeps ``n``, else None.

    Example:
        >>> nm_pattern(torch.tensor([[True, False, False, True]])), nm_pattern(torch.ones(2, 4, dtype=torch.bool))
        ((1, 2), None)
    """
    if mask.dim() < 2 or mask.numel() == 0:
        return None
    for m in range(2, min(mask.shape[1], MAX_GROUP) + 1):
        if mask.shape[1] % m == 0:
            kept = _grouped(mask, m).sum(dim=1)
            if 0 < kept[0] < m and bool((kept == kept[0]).all()):
                return int(kept[0]), m
    return None


def _encode_nm(mask: torch.Tensor) -> tuple[bytes, dict] | None:
    if (pattern := nm_pattern(mask)) is None:
        return None
    n, m = pattern
    positions = _grouped(mask, m).nonzero()[:, 1].numpy()  # per group, ascending
    return _bits(positions, (m - 1).bit_length()), {"n": n, "m": m}


def _decode_nm(data: bytes, shape: tuple[int, ...], params: dict) -> torch.Tensor:
    n, m = params["n"], params["m"]
    if len(shape) < 2 or not 0 < n < m or shape[1] % m:
        raise ValueError(f"has {n}:{m} groups, which a tensor of shape {tuple(shape)} cannot hold")
    groups = math.prod(shape) // m
    positions = _unbits(data, (m - 1).bit_length(), groups * n).reshape(groups, n)
    if positions.size and (positions.max() >= m or (np.diff(positions, axis=1) <= 0).any()):
        raise ValueError(f"has {n}:{m} positions that are not {n} different inputs of {m}")
    grouped = np.zeros((groups, m), dtype=bool)
    np.put_along_axis(grouped, positions, True, axis=1)
    moved = (shape[0], *shape[2:], shape[1])
    return torch.from_numpy(grouped).reshape(moved).movedim(-1, 1).contiguous()


MASK_ENCODINGS: dict[str, MaskEncoding] = {
    encoding.name: encoding
    for encoding in (
        MaskEncoding("bitmask", "one bit per element", _encode_bitmask, _decode_bitmask),
        MaskEncoding("indices", "per kept element the gap since the last one", _encode_indices, _decode_indices),
        MaskEncoding("nm", "N:M masks: per group the kept positions, log2(M) bits each", _encode_nm, _decode_nm),
    )
}
ENCODINGS = ("dense", *MASK_ENCODINGS)  # "dense": every value, pruned ones as zeros (and a bitmask if masked)

"""Exercise of notebook 10: how many bytes a pruned weight takes, stored as a bitmask or as index gaps plus its values.

``sparse_bytes(mask, value_bytes)`` returns the bytes of three ways to store a tensor whose kept elements are
``mask``, before any compression: ``"dense"`` (every value), ``"bitmask"`` (one bit per element, rounded up to whole
bytes, plus the kept values) and ``"indices"`` (per kept element the number of elements skipped since the previous
kept one, in the smallest unsigned integer of 1, 2, 4 or 8 bytes that holds the largest gap, plus the kept values).
The check compares with the encoders ``wb.save_sparse`` uses.

Example:
    >>> import math
    >>> def sparse_bytes(mask, value_bytes=4):
    ...     n, kept = mask.numel(), int(mask.sum())
    ...     positions = mask.flatten().nonzero().flatten()
    ...     gaps = torch.diff(positions, prepend=torch.tensor([-1])) - 1
    ...     largest = int(gaps.max()) if kept else 0
    ...     width = next(size for size in (1, 2, 4, 8) if largest < 256**size)
    ...     values = kept * value_bytes
    ...     return {"dense": n * value_bytes, "bitmask": math.ceil(n / 8) + values, "indices": kept * width + values}
    >>> check("sparse_bytes", sparse_bytes).passed
    True
"""

from __future__ import annotations

import torch

from ..storage_encodings import MASK_ENCODINGS
from .checker import Wrong, call, check, exercise

__all__ = ["check", "reference_bytes"]

WAYS = ("dense", "bitmask", "indices")


def reference_bytes(mask: torch.Tensor, value_bytes: int = 4) -> dict[str, int]:
    """The bytes of each way, from the encoders of ``wb.save_sparse`` (before compression)."""
    values = int(mask.sum()) * value_bytes
    return {
        "dense": mask.numel() * value_bytes,
        **{way: len(MASK_ENCODINGS[way].encode(mask)[0]) + values for way in ("bitmask", "indices")},
    }


def _random_mask(shape: tuple[int, ...], keep: float, seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < keep


def _cases():
    yield "case 1 (a 4×4 mask keeping 3, float32)", torch.eye(4, dtype=torch.bool).fliplr() & (torch.arange(4) < 3), 4
    yield "case 2 (a 300×64 layer at 90 % sparsity, float32)", _random_mask((300, 64), 0.1, 1), 4
    yield "case 3 (the same layer, float16 values)", _random_mask((300, 64), 0.1, 1), 2
    wide = torch.zeros(2, 600, dtype=torch.bool)
    wide[0, 0] = wide[1, 599] = True  # a gap of 1,198 elements needs 2-byte gaps
    yield "case 4 (a 2×600 mask keeping its two corners)", wide, 4
    yield (
        "case 5 (a 5×3×3×3 convolution: 135 bits of mask, not a whole number of bytes)",
        _random_mask((5, 3, 3, 3), 0.5, 2),
        4,
    )
    yield "case 6 (a mask that keeps nothing)", torch.zeros(5, 3, dtype=torch.bool), 4


@exercise(
    "sparse_bytes",
    hints=(
        "all three store the kept values: int(mask.sum()) × value_bytes bytes; dense stores every value instead",
        "a bitmask is one bit per element: (n + 7) // 8 bytes, a partly used last byte included",
        "the gaps: positions = mask.flatten().nonzero().flatten(); gaps = torch.diff(positions, "
        "prepend=torch.tensor([-1])) - 1; the width is the first of 1, 2, 4, 8 bytes with largest gap < 256**width",
    ),
)
def _check_sparse_bytes(attempt) -> str:
    for case, mask, value_bytes in _cases():
        expected = reference_bytes(mask, value_bytes)
        got = call(attempt, mask.clone(), value_bytes, case=case)
        if not isinstance(got, dict) or set(got) != set(WAYS):
            raise Wrong(f"in {case} sparse_bytes should return a dict with keys {', '.join(WAYS)}; got {got!r}")
        for way in WAYS:
            if got[way] != expected[way]:
                raise Wrong(f"in {case} your {way!r} size is {got[way]!r} bytes, which is not right")
    return "your sizes match the encoders of wb.save_sparse in every case (before compression)"

"""Where a pruned model's bytes go: ``torch.save`` files vs sparse files per encoding vs the entropy bound.

Every file is split three ways: values, indices (mask bits, index gaps, N:M positions, or a masked state_dict's
bool masks) and metadata (the rest: a sparse file's preamble and header, torch.save's zip and pickle records).
A sparse file compresses each buffer on its own, so its split is exact: the stored bytes of its value buffers,
of its mask buffers, and what remains of the file's size. ``torch.save`` stores tensors raw: their bytes are
the values and masks, the rest of the file is metadata. The entropy bound is what an ideal coder needs when
every value is incompressible: per tensor, kept × bits per value + n·H(kept / n) bits for where they are (H:
the binary entropy of a random mask of that density). Real files can go below it: trained weights' exponent
bytes repeat, so compressed values take fewer bits, and structured masks (rows, N:M groups) are not random.

Example:
    >>> import workbench as wb
    >>> model = wb.pretrained("mlp")
    >>> _ = wb.prune(model, sparsity=0.9)
    >>> report = storage_report(model)
    >>> [round(report.ratio(name), 2) for name in ("torch.save masked", "sparse auto", "entropy bound")]
    [1.25, 0.1, 0.12]
    >>> report.best  # the encoding of the smallest file
    'auto'
"""

from __future__ import annotations

import copy
import io
import math
from dataclasses import dataclass

import torch
from torch import nn

from .masks import bake
from .storage import EncodedTensor, encode_model, file_bytes
from .storage_encodings import ENCODINGS

PARTS = ("values", "indices", "metadata")
DENSE_FILE, MASKED_FILE, BOUND = "torch.save dense", "torch.save masked", "entropy bound"
SPARSE_FILES = {f"sparse {encoding}": encoding for encoding in ("auto", *ENCODINGS)}


def binary_entropy(p: float) -> float:
    """H(p) in bits: the information in one element of a random mask that keeps a share ``p``.

    Example:
        >>> binary_entropy(0.5), round(binary_entropy(0.1), 3), binary_entropy(1.0)
        (1.0, 0.469, 0.0)
    """
    return 0.0 if p <= 0 or p >= 1 else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def _split(total: int, values: int, indices: int) -> dict[str, int]:
    return {"values": values, "indices": indices, "metadata": total - values - indices, "total": total}


def saved_size(state: dict[str, torch.Tensor]) -> int:
    """Bytes of ``torch.save(state)``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


def _is_mask(name: str) -> bool:
    """Whether a masked model's state_dict entry is a ``WeightMask``'s mask buffer."""
    return ".parametrizations." in f".{name}" and name.endswith(".mask")


def _bound_bits(tensor: EncodedTensor) -> tuple[float, float]:
    """The entropy bound of one tensor in bits: of its kept values (full width), and of where they are."""
    numel, bits = math.prod(tensor.shape), torch.empty((), dtype=tensor.stored_dtype).element_size() * 8
    return tensor.kept * bits, numel * binary_entropy(tensor.kept / numel) if numel else 0.0


@dataclass
class StorageReport:
    """Bytes of each kind of file of one model, split into values, indices and metadata; ``str()`` is a table."""

    files: dict[str, dict[str, int] | None]  # file → bytes per part and total; None where the encoding does not fit
    tensors: list[dict]  # per tensor: name, shape, kept, numel, masked, auto's encoding, bytes per encoding, bound
    notes: dict[str, str]  # why a file is None

    def ratio(self, file: str) -> float:
        """Bytes of ``file`` as a share of the dense ``torch.save`` file."""
        return self.files[file]["total"] / self.files[DENSE_FILE]["total"]

    @property
    def best(self) -> str:
        """The encoding whose sparse file is smallest ("auto" on ties)."""
        sizes = {name: self.files[name]["total"] for name in SPARSE_FILES if self.files[name]}
        return SPARSE_FILES[min(sizes, key=sizes.get)]

    def to_dict(self) -> dict:
        return {"files": self.files, "tensors": self.tensors, "notes": self.notes}

    def __str__(self) -> str:
        lines = [f"{'file':<20}{'bytes':>10}{'of dense':>10}" + "".join(f"{part:>10}" for part in PARTS)]
        for name, sizes in self.files.items():
            if sizes is None:
                lines.append(f"{name:<20}{'—':>10}  {self.notes[name]}")
                continue
            parts = "".join(f"{sizes[part]:>10,}" for part in PARTS)
            lines.append(f"{name:<20}{sizes['total']:>10,}{self.ratio(name):>9.1%} {parts}")
        return "\n".join(lines)


def storage_report(model: nn.Module, values: str = "exact") -> StorageReport:
    """What ``model`` (masked or plain) takes as a dense ``torch.save``, as its masked state_dict, as a sparse
    file in each encoding (``values`` as in ``save_sparse``), and at the entropy bound, split into parts."""
    tensors = encode_model(model, "auto", values)
    plain, state = copy.deepcopy(model), model.state_dict()
    bake(plain)
    plain = plain.state_dict()  # what torch.save of the unmasked model holds, its state_dict's metadata too
    mask_bytes = sum(tensor.nbytes for name, tensor in state.items() if _is_mask(name))
    files = {
        DENSE_FILE: _split(saved_size(plain), sum(tensor.nbytes for tensor in plain.values()), 0),
        MASKED_FILE: _split(
            saved_size(state), sum(tensor.nbytes for tensor in state.values()) - mask_bytes, mask_bytes
        ),
    }
    notes = {}
    for name, encoding in SPARSE_FILES.items():
        try:
            data, chosen = file_bytes(model, tensors, encoding, values)
        except ValueError as error:
            files[name], notes[name] = None, str(error)
            continue
        sizes = [tensor.size(option) for tensor, option in zip(tensors, chosen)]
        files[name] = _split(len(data), sum(size[0] for size in sizes), sum(size[1] for size in sizes))
    bounds = [_bound_bits(tensor) for tensor in tensors]
    value_bytes, index_bytes = (round(sum(bits[i] for bits in bounds) / 8) for i in (0, 1))
    files[BOUND] = _split(value_bytes + index_bytes, value_bytes, index_bytes)
    rows = [
        {
            "name": tensor.name,
            "shape": tensor.shape,
            "numel": math.prod(tensor.shape),
            "kept": tensor.kept,
            "masked": tensor.masked,
            "encoding": tensor.choose("auto"),
            **{encoding: sum(tensor.size(encoding)) if encoding in tensor.options else None for encoding in ENCODINGS},
            "bound": round(sum(bits) / 8),
        }
        for tensor, bits in zip(tensors, bounds)
    ]
    return StorageReport(files, rows, notes)

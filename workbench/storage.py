"""Compact files of pruned models: ``save_sparse`` / ``load_sparse`` (lossless, no pickle), ``read_sparse``.

A masked weight is stored as its mask plus its kept values only: the file is of the pruned model, whose
pruned originals load as zeros. Every other tensor (biases, BatchNorm statistics, unpruned layers) is stored
whole, or sparse where its +0.0 elements make that smaller (a baked model; -0.0 is a value, kept bit for bit).
Each tensor takes the smallest of its encodings (``storage_encodings.ENCODINGS``: dense, bitmask, indices, nm)
unless ``encoding`` picks one for the masked weights. Values are bit patterns (exact), or float16 with
``values="fp16"``, which the file and the loader mark as lossy. The container (``storage_format``) is a JSON
header and compressed buffers, checksummed; ``storage_report`` measures where a file's bytes go.

Example:
    >>> import tempfile, torch, workbench as wb
    >>> model = wb.pretrained("mlp")
    >>> _ = wb.prune(model, sparsity=0.9)
    >>> path = tempfile.mkdtemp() + "/mlp.sparse"
    >>> size = save_sparse(model, path)  # bytes; a dense torch.save of the mlp takes 205,141
    >>> again = load_sparse(path)
    >>> x = torch.randn(4, 64)
    >>> size < 0.13 * 205_141, torch.equal(again(x), model(x))
    (True, True)
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .attention import attention_layouts
from .masks import apply_masks, dense_parameter, get_masks, plain_state_dict, undo
from .models import build_model, config_to_dict
from .storage_encodings import (
    DTYPES,
    ENCODINGS,
    MASK_ENCODINGS,
    bit_patterns_nonzero,
    dtype_named,
    from_bytes,
    to_bytes,
)
from .storage_format import Buffers, Damaged, Stored, compress, pack, unpack, write_atomically
from .structure.saving import misfit, registry_name, resize_to_state

VALUES = ("exact", "fp16")  # how values are stored: their bit patterns, or rounded to float16 (lossy)


@dataclass
class EncodedTensor:
    """One tensor, encoded each way that fits it: per encoding, its params and buffers (values, then the mask)."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    stored_dtype: torch.dtype
    masked: bool  # a masked weight: loading re-applies its mask
    kept: int  # kept (masked) or nonzero (others) elements
    options: dict[str, tuple[dict, list[Stored]]] = field(default_factory=dict)

    def size(self, encoding: str) -> tuple[int, int]:
        """Stored bytes of the values and of the mask (indices, positions or bits) under ``encoding``."""
        buffers = self.options[encoding][1]
        return len(buffers[0][1]), sum(len(data) for _, data, _ in buffers[1:])

    def choose(self, encoding: str) -> str:
        """The encoding this tensor is stored in when the file asks for ``encoding`` ("auto": the smallest)."""
        if encoding == "auto" or not self.masked:
            return min(self.options, key=lambda option: sum(self.size(option)))
        if encoding not in self.options:
            raise ValueError(
                f"encoding {encoding!r} does not fit {self.name!r}: its mask does not keep N of every M consecutive "
                "inputs; use encoding='auto'"
            )
        return encoding

    def header(self, encoding: str) -> dict:
        params, buffers = self.options[encoding]
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": _dtype_name(self.dtype),
            "stored_dtype": _dtype_name(self.stored_dtype),
            "masked": self.masked,
            "encoding": encoding,
            "params": params,
            "buffers": [[codec, len(data), size] for codec, data, size in buffers],
        }


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _encode(name: str, tensor: torch.Tensor, mask: torch.Tensor, masked: bool, encoding: str, values: str):
    """``tensor`` (``mask``: its kept elements) encoded as ``encoding`` asks ("auto": every encoding that fits)."""
    stored = tensor
    if values == "fp16" and tensor.dtype == torch.float32:
        stored = tensor.to(torch.float16)
        if bool((stored.isinf() & tensor.isfinite()).any()):
            raise ValueError(f"{name!r} has values beyond float16's range (±65504); save it with values='exact'")
    result = EncodedTensor(name, tuple(tensor.shape), tensor.dtype, stored.dtype, masked, int(mask.sum()))
    if not masked and result.kept == tensor.numel():
        wanted = ("dense",)  # nothing to skip
    else:
        wanted = ENCODINGS if encoding == "auto" or not masked else (encoding,)
    kept_values = None
    for option in wanted:
        if option == "dense":
            whole = compress(to_bytes(torch.where(mask, stored, torch.zeros((), dtype=stored.dtype))))
            bits = [compress(MASK_ENCODINGS["bitmask"].encode(mask)[0])] if masked else []
            result.options["dense"] = ({}, [whole, *bits])
        elif (coded := MASK_ENCODINGS[option].encode(mask)) is not None:
            kept_values = kept_values or compress(to_bytes(stored[mask]))
            result.options[option] = (coded[1], [kept_values, compress(coded[0])])
    return result


def encode_model(model: nn.Module, encoding: str = "auto", values: str = "exact") -> list[EncodedTensor]:
    """Every tensor of ``model``'s state_dict (plain names), encoded as ``encoding`` asks ("auto": all ways)."""
    if encoding not in ("auto", *ENCODINGS):
        raise ValueError(f"encoding must be 'auto' or one of {', '.join(ENCODINGS)}, got {encoding!r}")
    if values not in VALUES:
        raise ValueError(f"values must be 'exact' (bit-exact) or 'fp16' (lossy, half the bytes), got {values!r}")
    masks = get_masks(model)
    encoded = []
    for name, value in plain_state_dict(model).items():
        if _dtype_name(value.dtype) not in DTYPES:
            raise ValueError(f"{name!r} is {value.dtype}; a sparse file holds {', '.join(DTYPES)}")
        if name in masks:
            tensor, mask, masked = dense_parameter(model, name).detach().cpu(), masks[name].cpu(), True
        else:
            tensor, masked = value.cpu(), False
            mask = bit_patterns_nonzero(tensor)
        encoded.append(_encode(name, tensor, mask, masked, encoding, values))
    return encoded


def file_bytes(model: nn.Module, tensors: list[EncodedTensor], encoding: str, values: str) -> tuple[bytes, list[str]]:
    """The sparse file of ``model`` with ``encoding``, and each tensor's encoding in it."""
    chosen = [tensor.choose(encoding) for tensor in tensors]
    name = registry_name(model)
    header = {
        "model": name,
        "config": config_to_dict(model.config) if name else None,
        "heads": {module: layout.num_heads for module, layout in attention_layouts(model).items()},
        "values": values,
        "lossy": values == "fp16",
        "tensors": [tensor.header(option) for tensor, option in zip(tensors, chosen)],
    }
    buffers = [buffer for tensor, option in zip(tensors, chosen) for buffer in tensor.options[option][1]]
    return pack(header, buffers), chosen


def save_sparse(model: nn.Module, path, encoding: str = "auto", values: str = "exact") -> int:
    """Write ``model`` (masked or plain) to ``path`` as a compact sparse file; returns its size in bytes.

    Args:
        encoding: "auto" (each tensor its smallest encoding), or "dense", "bitmask", "indices" or "nm" for
            every masked weight ("nm" only fits N:M masks); other tensors always take their smallest.
        values: "exact" (bit patterns, a bit-exact round trip) or "fp16" (float32 values rounded to float16:
            lossy, marked so in the file, and ``load_sparse`` warns).

    The file is written beside ``path`` and renamed into place, so a failed save leaves no partial file.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; name a file in it, e.g. {path / 'model.sparse'}")
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent} does not exist; create that folder first, or save elsewhere")
    data, _ = file_bytes(model, encode_model(model, encoding, values), encoding, values)
    write_atomically(path, data)
    return len(data)


@dataclass
class SparseContents:
    """What a sparse file holds, read without building a model."""

    state: dict[str, torch.Tensor]  # plain state_dict names; pruned weights are zeros
    masks: dict[str, torch.Tensor]  # the masked weights' masks, by the same names
    encodings: dict[str, str]  # how each tensor was stored
    model: str | None  # the workbench model's name, None for a user's model
    config: dict | None  # its config, to build it with
    heads: dict[str, int]  # head counts of attention modules (a shrunk model's may be fewer)
    lossy: bool  # values were rounded to float16 (saved with values="fp16")


def _decode_tensor(entry: dict, buffers: Buffers) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One tensor of a file and its mask (None unless masked); errors say what is wrong after the tensor's name."""
    shape, encoding, params = entry["shape"], entry["encoding"], entry["params"]
    if not isinstance(shape, list) or not all(type(size) is int and size >= 0 for size in shape):
        raise ValueError(f"has shape {shape!r}, not a list of sizes")
    if encoding not in ENCODINGS:
        raise ValueError(f"has encoding {encoding!r}; a sparse file uses {', '.join(ENCODINGS)}")
    shape, masked, stored = tuple(shape), entry["masked"] is True, dtype_named(entry["stored_dtype"])
    expected = 2 if masked or encoding != "dense" else 1
    if len(entry["buffers"]) != expected:
        raise ValueError(f"has {len(entry['buffers'])} buffers where {expected} were expected")
    raws = buffers.read([tuple(stored_as) for stored_as in entry["buffers"]])
    if encoding == "dense":
        tensor = from_bytes(raws[0], stored, math.prod(shape)).view(shape)
        mask = MASK_ENCODINGS["bitmask"].decode(raws[1], shape, {}) if masked else None
    else:
        mask = MASK_ENCODINGS[encoding].decode(raws[1], shape, params)
        tensor = torch.zeros(shape, dtype=stored)
        tensor[mask] = from_bytes(raws[0], stored, int(mask.sum()))
    return tensor.to(dtype_named(entry["dtype"])), mask if masked else None


def read_sparse(path) -> SparseContents:
    """The tensors, masks and facts of the sparse file at ``path``; a bad file raises a one-line ValueError."""
    path = Path(path)
    header, buffers = unpack(path)
    entries, heads = header.get("tensors"), header.get("heads") or {}
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ValueError(f"{path} is damaged: its header lists no tensors")
    if not all(isinstance(entry.get("name"), str) for entry in entries):
        raise ValueError(f"{path} is damaged: its header lists a tensor without a name")
    if not isinstance(heads, dict):
        raise ValueError(f"{path} is damaged: its header's head counts are a {type(heads).__name__}")
    contents = SparseContents({}, {}, {}, header.get("model"), header.get("config"), heads, header.get("lossy") is True)
    for entry in entries:
        name = entry["name"]
        try:
            contents.state[name], mask = _decode_tensor(entry, buffers)
        except KeyError as error:
            raise ValueError(f"{path} is damaged: tensor {name!r} lacks {error}") from None
        except (Damaged, ValueError) as error:
            raise ValueError(f"{path} is damaged: tensor {name!r} {error}") from None
        except (TypeError, AttributeError, IndexError, RuntimeError) as error:
            raise ValueError(f"{path} is damaged: tensor {name!r} is malformed ({error})") from None
        contents.encodings[name] = entry["encoding"]
        if mask is not None:
            contents.masks[name] = mask
    try:
        buffers.check_used_up()
    except Damaged as error:
        raise ValueError(f"{path} is damaged: {error}") from None
    return contents


def load_sparse(path, template: nn.Module | None = None) -> nn.Module:
    """The model ``save_sparse`` wrote, masks re-applied (pruned originals are zeros), in eval mode.

    Args:
        template: a model of the original architecture, for a user's model (ours are built by name and
            config). It is left as it is: a filled copy is returned.

    A missing, truncated, damaged or foreign file raises a one-line ValueError naming the file and what is
    wrong; nothing in the file is ever executed (no pickle). A file saved with values="fp16" warns that its
    weights are rounded.
    """
    path = Path(path)
    contents = read_sparse(path)
    if template is None:
        if not contents.model:
            raise ValueError(f"{path} holds a user's model: pass template=<a model of the original architecture>")
        try:
            model = build_model(contents.model, contents.config)
        except (TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"{path} describes a model that cannot be built: {error}") from None
        what = f"the {contents.model} model it describes"
    else:
        model = copy.deepcopy(template)
        undo(model)
        what = f"the template {type(template).__name__}"
    resize_to_state(model, contents.state, contents.heads, path, what)
    if why := misfit(model, contents.state):
        raise ValueError(f"{path} does not fit {what}: {why}")
    model.load_state_dict(contents.state)
    try:
        apply_masks(model, contents.masks)
    except ValueError as error:
        raise ValueError(f"{path} does not fit {what}: {error}") from None
    if contents.lossy:
        warnings.warn(f"{path} holds float16 values (saved with values='fp16'): its weights are rounded", stacklevel=2)
    return model.eval()

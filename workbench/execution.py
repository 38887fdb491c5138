"""Ways to run a pruned model: dense, masked, CSR, BSR, 2:4 semi-structured, shrunk; each built as its own copy.

A mask only says which weights are zero; what that buys depends on how the model is run:

* ``"dense"``: the masks baked into plain dense weights (zeros stored and multiplied): the reference;
* ``"masked"``: the model as pruned (``parametrize``: every forward multiplies each weight by its mask);
* ``"csr"`` / ``"bsr"``: each pruned ``nn.Linear`` holds its weight in torch's compressed sparse rows, or sparse
  blocks, and multiplies with a sparse kernel; convolutions stay dense (torch has no sparse convolution kernels);
* ``"semi_structured"``: 2:4 weights of ``nn.Linear`` layers as ``torch.sparse.to_sparse_semi_structured`` (CUDA,
  half precision: the GPU's sparse tensor cores);
* ``"shrunk"``: ``wb.shrink`` of the structured masks: a physically smaller dense model.

``build_mode`` never fails for a mode that cannot run here: it returns a ``ModeBuild`` marked unavailable with the
reason, and names every layer that stays dense and why.

Example:
    >>> import torch, workbench as wb
    >>> model = wb.pretrained("mlp")
    >>> _ = wb.prune(model, sparsity=0.9)
    >>> built = build_mode(model, "csr", torch.zeros(2, 64))
    >>> built.available, built.sparse_layers
    (True, ['fc1', 'fc2', 'fc3'])
    >>> build_mode(model, "semi_structured", torch.zeros(2, 64), device="cpu").reason
    '2:4 kernels need a CUDA GPU; none here'
"""

from __future__ import annotations

import warnings
from copy import deepcopy
from dataclasses import dataclass, field

import torch
from torch import nn

from .devices import resolve_device
from .masks import bake, get_masks, qualified

# torch warns once per process that CSR is a beta feature; the modes here are tested against dense outputs
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)

MODES = ("dense", "masked", "csr", "bsr", "semi_structured", "shrunk")
BLOCK_SIDES = (32, 16, 8, 4, 2)
BLOCKS = tuple((b, b) for b in BLOCK_SIDES)  # BSR blocks tried, largest first: square (MKL's CPU kernels need it)


@dataclass
class ModeBuild:
    """One way to run a model: the model (None when unavailable), and why layers are or are not sparse."""

    mode: str
    model: nn.Module | None
    reason: str = ""  # why unavailable, or a note on what this mode does here
    sparse_layers: list[str] = field(default_factory=list)
    dense_layers: dict[str, str] = field(default_factory=dict)  # layer -> why it stays dense

    @property
    def available(self) -> bool:
        return self.model is not None


class SparseLinear(nn.Module):
    """A Linear whose weight is a sparse CSR or BSR tensor: ``y = (W @ xᵀ)ᵀ + b`` with a sparse kernel."""

    def __init__(self, linear: nn.Linear, layout: str, blocksize: tuple[int, int] | None = None):
        super().__init__()
        self.in_features, self.out_features, self.layout = linear.in_features, linear.out_features, layout
        weight = linear.weight.detach()
        sparse = weight.to_sparse_csr() if layout == "csr" else weight.to_sparse_bsr(blocksize)
        self.register_buffer("weight", sparse)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        out = torch.sparse.mm(self.weight, flat.T).T
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, layout={self.layout}"


def _baked_copy(model: nn.Module) -> nn.Module:
    copy = deepcopy(model)
    bake(copy)
    return copy.eval()


def _block_size(mask: torch.Tensor) -> tuple[tuple[int, int] | None, str]:
    """The largest of ``BLOCKS`` on which ``mask`` is constant (whole blocks kept or pruned); else the smallest
    that divides the shape, with a note that its blocks store zeros."""
    rows, columns = mask.shape
    dividing = [(r, c) for r, c in BLOCKS if rows % r == 0 and columns % c == 0]
    if not dividing:
        return None, f"no block in {BLOCK_SIDES} divides its {rows}×{columns} shape"
    for r, c in dividing:
        blocks = mask.reshape(rows // r, r, columns // c, c)
        if bool((blocks.all(dim=(1, 3)) | ~blocks.any(dim=(1, 3))).all()):
            return (r, c), ""
    r, c = dividing[-1]
    return (r, c), f"masks not block-structured, so their {r}×{c} blocks store zeros"


def _sparse_copy(model: nn.Module, layout: str) -> ModeBuild:
    masks = get_masks(model)
    copy = _baked_copy(model)
    build = ModeBuild(layout, copy)
    notes: dict[str, list[str]] = {}  # what a layer's storage costs → the layers it applies to
    for name, module in list(copy.named_modules()):
        mask = masks.get(qualified(name, "weight"))
        if not isinstance(module, nn.Linear):
            if isinstance(module, nn.modules.conv._ConvNd):
                build.dense_layers[name] = "convolution: torch has no sparse convolution kernels"
            continue
        if mask is None or bool(mask.all()):
            build.dense_layers[name] = "not pruned"
            continue
        blocksize = None
        if layout == "bsr":
            blocksize, note = _block_size(mask)
            if blocksize is None:
                build.dense_layers[name] = note
                continue
            if note:
                notes.setdefault(note, []).append(name)
        parent, _, leaf = name.rpartition(".")
        setattr(copy.get_submodule(parent), leaf, SparseLinear(module, layout, blocksize))
        build.sparse_layers.append(name)
    if not build.sparse_layers:
        return ModeBuild(layout, None, "no pruned Linear layer to store sparse", [], build.dense_layers)
    build.reason = "; ".join(f"{_listed(layers)}: {note}" for note, layers in notes.items())
    return build


def _listed(names: list[str], shown: int = 3) -> str:
    """Layer names for a one-line note: all of a few, or the first ones and how many more."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def _is_two_four(mask: torch.Tensor) -> bool:
    return mask.shape[-1] % 4 == 0 and bool((mask.reshape(mask.shape[0], -1, 4).sum(-1) <= 2).all())


def _semi_structured(model: nn.Module, device: torch.device) -> ModeBuild:
    if device.type != "cuda":
        return ModeBuild("semi_structured", None, "2:4 kernels need a CUDA GPU; none here")
    if torch.cuda.get_device_capability(device) < (8, 0):
        return ModeBuild("semi_structured", None, "2:4 kernels need an Ampere or newer GPU (compute capability 8.0)")
    from torch.sparse import to_sparse_semi_structured

    masks = get_masks(model)
    copy = _baked_copy(model).half().to(device)
    build = ModeBuild("semi_structured", copy, "half precision (the sparse kernels' dtype)")
    for name, module in copy.named_modules():
        mask = masks.get(qualified(name, "weight"))
        if not isinstance(module, nn.Linear):
            continue
        if mask is None or not _is_two_four(mask):
            build.dense_layers[name] = "weight is not 2:4 sparse along its inputs"
            continue
        try:
            module.weight = nn.Parameter(to_sparse_semi_structured(module.weight.detach()), requires_grad=False)
        except (RuntimeError, ValueError) as error:  # shapes the kernels refuse (too small, not a multiple)
            build.dense_layers[name] = str(error).strip().splitlines()[0]
            continue
        build.sparse_layers.append(name)
    if not build.sparse_layers:
        return ModeBuild("semi_structured", None, "no 2:4 Linear layer the kernels accept", [], build.dense_layers)
    return build


def _shrunk(model: nn.Module, example_inputs) -> ModeBuild:
    from .shrinking import shrink

    try:
        small = shrink(model, example_inputs)
    except ValueError as error:
        return ModeBuild("shrunk", None, f"cannot shrink: {error}")
    before = sum(p.numel() for p in model.parameters())
    if sum(p.numel() for p in small.parameters()) >= before:
        return ModeBuild("shrunk", None, "nothing to remove: the masks prune no whole neuron, filter or head")
    return ModeBuild("shrunk", small.eval())


def build_mode(model: nn.Module, mode: str, example_inputs, *, device: str | torch.device = "auto") -> ModeBuild:
    """A copy of the pruned ``model`` set up to run as ``mode`` (one of ``MODES``); ``model`` is left untouched."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    target = resolve_device(device)
    if mode == "dense":
        return ModeBuild("dense", _baked_copy(model), "masks baked in: zeros stored and multiplied")
    if mode == "masked":
        return ModeBuild("masked", deepcopy(model).eval(), "parametrized: each forward multiplies weight × mask")
    if mode in ("csr", "bsr"):
        return _sparse_copy(model, mode)
    if mode == "semi_structured":
        return _semi_structured(model, target)
    return _shrunk(model, example_inputs)

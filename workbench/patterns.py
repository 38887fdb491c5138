"""Patterns: how a model's weights are cut into groups that are kept or pruned together.

A ``Target`` is one unit of selection (usually one layer; for attention heads, a whole attention
module): for every parameter it touches, a tensor of group ids shaped like the parameter (-1 = not
part of any group). Group ids turn element scores into group scores with one ``scatter_reduce``
and group decisions back into element masks with one gather, for every pattern alike. The same
targets describe what a structured shrink must remove.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> [t.name for t in build_targets(model, "neuron")]  # the output layer keeps its classes
    ['0']
    >>> parse_pattern("2:4")
    Pattern(kind='nm', n=2, m=4, block=None)
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from .masks import qualified

PATTERNS = (
    "unstructured",
    "N:M (e.g. 2:4)",
    "blockRxC (e.g. block1x4, block4x4)",
    "kernel",
    "neuron",
    "filter",
    "channel",
    "head",
)
OUTPUT_PATTERNS = ("neuron", "filter")  # whole output units: rows of a Linear, filters of a Conv
PRUNABLE_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class Pattern:
    kind: str  # "unstructured", "nm", "block", "kernel", "output", "input", "head"
    n: int | None = None  # N:M: keep n of every m
    m: int | None = None
    block: tuple[int, int] | None = None  # block rows × columns of the (out, in·k·k) view

    @property
    def structured(self) -> bool:
        return self.kind in ("output", "input", "head")

    @property
    def fixed_sparsity(self) -> float | None:
        """N:M patterns fix the sparsity at 1 - N/M."""
        return 1 - self.n / self.m if self.kind == "nm" else None


def parse_pattern(pattern: str | Pattern) -> Pattern:
    """Read a pattern name: "unstructured", "2:4", "block4x4", "kernel", "neuron", "filter", "channel", "head"."""
    if isinstance(pattern, Pattern):
        return pattern
    text = str(pattern).strip().lower()
    simple = {
        "unstructured": "unstructured",
        "kernel": "kernel",
        "neuron": "output",
        "filter": "output",
        "channel": "input",
        "head": "head",
    }
    if text in simple:
        return Pattern(simple[text])
    if match := re.fullmatch(r"(\d+):(\d+)", text):
        n, m = int(match[1]), int(match[2])
        if not 0 < n < m:
            raise ValueError(f"N:M pattern needs 0 < N < M, got {pattern!r}")
        return Pattern("nm", n=n, m=m)
    if match := re.fullmatch(r"block(\d+)x(\d+)", text):
        rows, cols = int(match[1]), int(match[2])
        if rows < 1 or cols < 1 or rows * cols < 2:
            raise ValueError(f"block pattern needs at least 2 weights per block, got {pattern!r}")
        return Pattern("block", block=(rows, cols))
    raise ValueError(f"unknown pattern {pattern!r}; choose one of: {', '.join(PATTERNS)}")


@dataclass
class Target:
    """Groups of weights selected together: ``group_ids[param]`` is shaped like the parameter."""

    name: str  # module name shown to users, e.g. "fc1" or "blocks.0.attn"
    group_ids: dict[str, torch.Tensor]  # state_dict name → long tensor, -1 = outside every group
    num_groups: int
    elementwise: bool = False  # one group per element, ids = flat index (unstructured): masks are views
    group_sizes: torch.Tensor = field(init=False)  # elements per group

    def __post_init__(self):
        sizes = torch.zeros(self.num_groups, dtype=torch.long)
        for ids in self.group_ids.values():
            inside = ids[ids >= 0]
            sizes += torch.bincount(inside.flatten(), minlength=self.num_groups)
        self.group_sizes = sizes

    @property
    def numel(self) -> int:
        return int(self.group_sizes.sum())

    def group_scores(self, scores: dict[str, torch.Tensor], reduce: str) -> torch.Tensor:
        """One score per group from element scores: "sum", "mean" or "l2" (root of summed squares)."""
        total = torch.zeros(self.num_groups, dtype=torch.float64)
        for name, ids in self.group_ids.items():
            inside = ids >= 0
            values = scores[name][inside].double()
            total.scatter_add_(0, ids[inside], values**2 if reduce == "l2" else values)
        if reduce == "l2":
            return total.sqrt()
        return total / self.group_sizes if reduce == "mean" else total

    def element_masks(self, keep: torch.Tensor) -> dict[str, torch.Tensor]:
        """Bool masks per parameter from a bool keep-vector over groups (elements outside groups stay)."""
        if self.elementwise:
            return {name: keep.view(ids.shape) for name, ids in self.group_ids.items()}
        padded = torch.cat([keep, keep.new_ones(1)])  # index -1 → the trailing True
        return {name: padded[ids] for name, ids in self.group_ids.items()}


def _view2d_ids(weight: torch.Tensor, kind: str, block: tuple[int, int] | None) -> tuple[torch.Tensor, int]:
    out_features = weight.shape[0]
    if kind == "unstructured":
        return torch.arange(weight.numel()).view(weight.shape), weight.numel()
    if kind == "output":
        return torch.arange(out_features).view(-1, *[1] * (weight.dim() - 1)).expand(weight.shape).clone(), out_features
    if kind == "input":
        in_features = weight.shape[1]
        return torch.arange(in_features).view(1, -1, *[1] * (weight.dim() - 2)).expand(
            weight.shape
        ).clone(), in_features
    if kind == "kernel":
        pairs = weight.shape[0] * weight.shape[1]
        return torch.arange(pairs).view(*weight.shape[:2], *[1] * (weight.dim() - 2)).expand(
            weight.shape
        ).clone(), pairs
    rows, cols = block
    flat_cols = weight[0].numel()
    row_ids = torch.arange(out_features).div(rows, rounding_mode="floor").view(-1, 1)
    col_ids = torch.arange(flat_cols).div(cols, rounding_mode="floor").view(1, -1)
    ids = row_ids * (flat_cols // cols) + col_ids
    return ids.view(weight.shape), (out_features // rows) * (flat_cols // cols)


def _check_shape(name: str, weight: torch.Tensor, pattern: Pattern) -> None:
    if pattern.kind == "nm":
        channels = weight.shape[1]
        if channels % pattern.m:
            raise ValueError(
                f"{pattern.n}:{pattern.m} groups {pattern.m} consecutive inputs, but {name!r} has {channels} input "
                f"features/channels (not divisible by {pattern.m}); exclude it, e.g. exclude=[{name.rpartition('.')[0]!r}]"
            )
    if pattern.kind == "block":
        rows, cols = pattern.block
        if weight.shape[0] % rows or weight[0].numel() % cols:
            raise ValueError(
                f"block{rows}x{cols} needs the ({weight.shape[0]} × {weight[0].numel()}) weight view of {name!r} to "
                f"divide into {rows}×{cols} tiles; exclude it, e.g. exclude=[{name.rpartition('.')[0]!r}]"
            )


HEAD_COUNTS = ("num_heads", "num_attention_heads", "n_heads", "n_head", "heads", "nhead")
HEAD_SIZES = ("head_dim", "attention_head_size", "head_size", "d_head", "dim_head")
SEPARATE = (("q", "k", "v"), ("query", "key", "value"), ("q_proj", "k_proj", "v_proj"), ("to_q", "to_k", "to_v"))
FUSED = ("qkv", "to_qkv", "Wqkv")
OUTS = ("out", "out_proj", "proj", "o", "o_proj", "dense", "c_proj", "to_out", "wo")
WIDTHS = ("all_head_size", "inner_dim", "inner_size", "embed_dim", "hidden_size", "dim")


@dataclass(frozen=True)
class AttentionLayout:
    """Where an attention module keeps its heads: q/k/v rows in ``head_dim`` blocks, the out columns.

    ``qkv`` lists (child Linear, row offset) for q, k and v: separate layers at offset 0, or one fused
    layer at offsets 0, width, 2·width. ``out`` is None when the heads are read outside the module.
    """

    heads_attr: str  # attribute holding the head count, updated when heads are removed
    num_heads: int
    head_dim: int
    qkv: tuple[tuple[str, int], ...]
    out: str | None
    widths: tuple[str, ...] = ()  # int attributes equal to num_heads × head_dim, updated with the head count

    @property
    def width(self) -> int:
        return self.num_heads * self.head_dim

    def group_ids(self, name: str, module: nn.Module) -> dict[str, torch.Tensor]:
        """Head ids of the q/k/v weight rows and out weight columns (-1 elsewhere), by state_dict name."""
        ids = {}
        heads = torch.arange(self.width).div(self.head_dim, rounding_mode="floor")
        for child, offset in self.qkv:
            weight = getattr(module, child).weight
            key = qualified(qualified(name, child), "weight")
            rows = ids.setdefault(key, torch.full(weight.shape, -1, dtype=torch.long))
            rows[offset : offset + self.width] = heads.view(-1, 1)
        if self.out is not None:
            out = getattr(module, self.out).weight
            ids[qualified(qualified(name, self.out), "weight")] = heads.view(1, -1).expand(out.shape[0], -1).clone()
        return ids


def attention_layout(module: nn.Module) -> AttentionLayout | None:
    """The head layout of an attention module (separate or fused q/k/v Linear layers), or None."""
    heads_attr = next(
        (a for a in HEAD_COUNTS if isinstance(getattr(module, a, None), int) and getattr(module, a) > 0), None
    )
    if heads_attr is None:
        return None
    num_heads = getattr(module, heads_attr)
    children = dict(module.named_children())
    linear = {name: m for name, m in children.items() if isinstance(m, nn.Linear)}
    separate = next((names for names in SEPARATE if all(n in linear for n in names)), None)
    fused = next((n for n in FUSED if n in linear), None)
    if separate:
        width = linear[separate[0]].out_features
        qkv = tuple((n, 0) for n in separate)
        if any(linear[n].out_features != width for n in separate):
            return None
    elif fused and linear[fused].out_features % 3 == 0:
        width = linear[fused].out_features // 3
        qkv = ((fused, 0), (fused, width), (fused, 2 * width))
    else:
        return None
    head_dim = next(
        (getattr(module, a) for a in HEAD_SIZES if isinstance(getattr(module, a, None), int)), width // num_heads
    )
    if head_dim < 1 or num_heads * head_dim != width:
        return None
    out = next((n for n in OUTS if n in linear and linear[n].in_features == width), None)
    widths = tuple(
        a
        for a in WIDTHS
        if a not in (heads_attr,) and getattr(module, a, None) == width and type(getattr(module, a)) is int
    )
    return AttentionLayout(heads_attr, num_heads, head_dim, qkv, out, widths)


def attention_layouts(model: nn.Module) -> dict[str, AttentionLayout]:
    """The head layout of every attention module of ``model`` (see ``attention_layout``), by module name."""
    found = {}
    for name, module in model.named_modules():
        layout = attention_layout(module)
        if layout is not None:
            found[name] = layout
    return found


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Modules with ``num_heads``, ``head_dim`` and Linear ``q``, ``k``, ``v``, ``out`` children."""
    found = {}
    for name, module in model.named_modules():
        if (
            hasattr(module, "num_heads")
            and hasattr(module, "head_dim")
            and all(isinstance(getattr(module, part, None), nn.Linear) for part in ("q", "k", "v", "out"))
        ):
            found[name] = module
    return found


def _excluded(name: str, exclude) -> bool:
    return any(name == pattern or fnmatch.fnmatchcase(name, pattern) for pattern in exclude)


def prunable_layers(model: nn.Module, exclude=()) -> dict[str, nn.Module]:
    """Linear and Conv layers by module name, minus those matching ``exclude`` (names or globs)."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, PRUNABLE_LAYERS) and not _excluded(name, exclude)
    }


def build_targets(model: nn.Module, pattern: str | Pattern, exclude=()) -> list[Target]:
    """The selection targets of ``pattern`` on ``model``.

    Layers a pattern does not apply to (kernel on a Linear, N:M on nothing) are left dense; output-unit
    patterns leave the model's last layer dense, since its outputs are the classes. Raises ValueError
    when nothing is left to prune or a layer's shape does not fit the pattern.
    """
    pattern = parse_pattern(pattern)
    if pattern.kind == "head":
        targets = []
        for name, layout in attention_layouts(model).items():
            if not _excluded(name, exclude):
                targets.append(Target(name, layout.group_ids(name, model.get_submodule(name)), layout.num_heads))
        if not targets:
            raise ValueError(
                "the head pattern needs attention modules with a head count (num_heads, …) and q/k/v or fused qkv Linear layers; this model has none (not excluded)"
            )
        return targets
    layers = prunable_layers(model, exclude)
    if pattern.kind == "output" and layers:
        last = list(prunable_layers(model))[-1]
        layers.pop(last, None)
    if pattern.kind == "kernel":
        layers = {name: m for name, m in layers.items() if isinstance(m, (nn.Conv1d, nn.Conv2d))}
        if not layers:
            raise ValueError(
                "the kernel pattern prunes whole k×k kernels of Conv layers; this model has no Conv layer (not excluded)"
            )
    if not layers:
        raise ValueError(
            f"nothing to prune: no Linear or Conv layer left for pattern {pattern.kind!r} (exclude={list(exclude)})"
        )
    targets = []
    for name, layer in layers.items():
        weight_name = qualified(name, "weight")
        _check_shape(weight_name, layer.weight, pattern)
        if pattern.kind == "nm":
            ids, count = _nm_ids(layer.weight, pattern.m)
        else:
            ids, count = _view2d_ids(layer.weight, pattern.kind, pattern.block)
        targets.append(Target(name, {weight_name: ids}, count, elementwise=pattern.kind == "unstructured"))
    return targets


def _nm_ids(weight: torch.Tensor, m: int) -> tuple[torch.Tensor, int]:
    """Group ids of M consecutive input channels at the same (output, kernel position)."""
    out_features, in_features = weight.shape[:2]
    spatial = weight[0, 0].numel()
    o = torch.arange(out_features).view(-1, 1, 1)
    i = torch.arange(in_features).view(1, -1, 1)
    s = torch.arange(spatial).view(1, 1, -1)
    ids = (o * (in_features // m) + i.div(m, rounding_mode="floor")) * spatial + s
    return ids.view(weight.shape), out_features * (in_features // m) * spatial


def nm_keep(scores: torch.Tensor, ids: torch.Tensor, num_groups: int, n: int, m: int) -> torch.Tensor:
    """Keep the ``n`` best of every group of ``m`` (ties: lower input index kept first)."""
    order = ids.flatten().argsort(stable=True)  # elements grouped, inputs ascending inside a group
    grouped = scores.flatten()[order].view(num_groups, m)
    ranks = grouped.argsort(dim=1, descending=True, stable=True)[:, :n]
    keep_grouped = torch.zeros(num_groups, m, dtype=torch.bool)
    keep_grouped.scatter_(1, ranks, True)
    keep = torch.empty(scores.numel(), dtype=torch.bool)
    keep[order] = keep_grouped.flatten()
    return keep.view(scores.shape)

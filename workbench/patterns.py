"""Patterns: how a model's weights are cut into groups that are kept or pruned together, one registry.

A ``PatternSpec`` says how a pattern cuts a weight into groups, which layers it applies to, whether
it is structured, and what whole-group pruning (``wb.shrink``, ``coupled=True``) removes under its
name. ``register_pattern`` adds one; the pruner, the shrinker, the widgets and the CLI read
``PATTERN_SPECS``. A ``Target`` is one unit of selection (usually one layer; for attention heads, a
whole attention module): for every parameter it touches, a tensor of group ids shaped like the
parameter (-1 = not part of any group). Group ids turn element scores into group scores with one
``scatter_reduce`` and group decisions back into element masks with one gather, for every pattern alike.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> [t.name for t in build_targets(model, "neuron")]  # the output layer keeps its classes
    ['0']
    >>> parse_pattern("2:4")
    Pattern(kind='nm', n=2, m=4, block=None)
    >>> pattern_examples()
    ('unstructured', '2:4', 'block1x4', 'block4x4', 'kernel', 'neuron', 'channel', 'head')
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .attention import attention_layouts
from .layers import PRUNABLE_LAYERS, check_exclude, is_excluded, prunable_layers
from .masks import qualified

GroupIds = Callable[[torch.Tensor, "Pattern"], tuple[torch.Tensor, int]]


@dataclass(frozen=True)
class Pattern:
    """A parsed pattern name: its registry ``kind`` and parameters ("2:4" → kind "nm", n=2, m=4)."""

    kind: str  # a key of PATTERN_SPECS: "unstructured", "nm", "block", "kernel", "output", "input", "head"
    n: int | None = None  # N:M: keep n of every m
    m: int | None = None
    block: tuple[int, int] | None = None  # block rows × columns of the (out, in·k·k) view

    @property
    def spec(self) -> PatternSpec:
        return PATTERN_SPECS[self.kind]

    @property
    def structured(self) -> bool:
        return self.spec.structured

    @property
    def fixed_sparsity(self) -> float | None:
        """Patterns that fix the sparsity (N:M: 1 - N/M), else None."""
        return self.spec.fixed_sparsity(self) if self.spec.fixed_sparsity else None


@dataclass(frozen=True)
class PatternSpec:
    """One pattern: how it cuts weights into groups and where it applies.

    ``group_ids(weight, pattern) -> (ids, count)`` labels every weight element with its group (per layer);
    patterns over other units (attention heads) give ``targets(model, pattern, exclude)`` instead.
    """

    kind: str
    names: tuple[str, ...]  # names that select it exactly ("neuron", "filter")
    description: str
    examples: tuple[str, ...]  # names shown in dropdowns, the CLI help and the docs
    group_ids: GroupIds | None = None
    layers: tuple[type[nn.Module], ...] = PRUNABLE_LAYERS  # layer types it cuts
    parse: Callable[[str], Pattern | None] | None = None  # for parametrized names ("2:4", "block4x4")
    syntax: str = ""  # how a parametrized name is written, e.g. "N:M (e.g. 2:4)"
    structured: bool = False  # removes whole units (rows, columns, heads): the matrices can get smaller
    coupled: str | None = None  # what whole-group pruning removes under these names: "channel" or "head" groups
    skips_last_layer: bool = False  # leaves the model's last layer dense (its outputs are the classes)
    check: Callable[[str, torch.Tensor, Pattern], None] | None = None  # ValueError when a shape does not fit
    targets: Callable[[nn.Module, Pattern, tuple[str, ...]], list[Target]] | None = None
    fixed_sparsity: Callable[[Pattern], float] | None = None
    keep: Callable[[torch.Tensor, torch.Tensor, int, Pattern], torch.Tensor] | None = None  # fixed-sparsity selection
    elementwise: bool = False  # one group per element (masks are views of the keep vector)


PATTERN_SPECS: dict[str, PatternSpec] = {}


def register_pattern(spec: PatternSpec) -> PatternSpec:
    """Add a pattern to the registry: ``wb.prune``, ``wb.Pruner``, widgets and the CLI offer it from then on."""
    taken = {name for other in PATTERN_SPECS.values() if other.kind != spec.kind for name in other.names}
    if clash := taken & set(spec.names):
        raise ValueError(f"pattern names {sorted(clash)} are taken by another pattern")
    if spec.group_ids is None and spec.targets is None:
        raise ValueError(f"pattern {spec.kind!r} needs group_ids (per layer) or targets (other units)")
    PATTERN_SPECS[spec.kind] = spec
    return spec


def pattern_names() -> tuple[str, ...]:
    """How each pattern is written, for help texts: "unstructured", "N:M (e.g. 2:4)", "neuron", …"""
    return tuple(text for spec in PATTERN_SPECS.values() for text in (spec.syntax, *spec.names) if text)


def pattern_examples() -> tuple[str, ...]:
    """Concrete pattern names for dropdowns and tests, every registered pattern represented."""
    return tuple(example for spec in PATTERN_SPECS.values() for example in spec.examples)


def coupled_patterns() -> tuple[str, ...]:
    """Names under which whole dependency groups are pruned and shrunk ("neuron", "filter", "head")."""
    return tuple(name for spec in PATTERN_SPECS.values() if spec.coupled for name in spec.names)


def parse_pattern(pattern: str | Pattern) -> Pattern:
    """Read a pattern name: "unstructured", "2:4", "block4x4", "kernel", "neuron", "filter", "channel", "head"."""
    if isinstance(pattern, Pattern):
        return pattern
    if not isinstance(pattern, str):
        raise ValueError(f"pattern must be a name such as 'unstructured' or '2:4', got {pattern!r}")
    text = pattern.strip().lower()
    for spec in PATTERN_SPECS.values():
        if text in spec.names:
            return Pattern(spec.kind)
    for spec in PATTERN_SPECS.values():
        if spec.parse and (parsed := spec.parse(text)) is not None:
            return parsed
    raise ValueError(f"unknown pattern {pattern!r}; choose one of: {', '.join(pattern_names())}")


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
        if self.elementwise:  # one element per group: its score as it is (a negative score stays negative)
            return torch.cat([scores[name].flatten().double() for name in self.group_ids])
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


# ---- group ids of the built-in patterns ----


def _unstructured_ids(weight: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, int]:
    return torch.arange(weight.numel()).view(weight.shape), weight.numel()


def _along(weight: torch.Tensor, dims: int) -> tuple[torch.Tensor, int]:
    """One group per index of the first ``dims`` dimensions (rows; rows × columns)."""
    count = int(torch.tensor(weight.shape[:dims]).prod())
    ids = torch.arange(count).view(*weight.shape[:dims], *[1] * (weight.dim() - dims))
    return ids.expand(weight.shape).clone(), count


def _output_ids(weight: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, int]:
    return _along(weight, 1)


def _input_ids(weight: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, int]:
    in_features = weight.shape[1]
    ids = torch.arange(in_features).view(1, -1, *[1] * (weight.dim() - 2))
    return ids.expand(weight.shape).clone(), in_features


def _kernel_ids(weight: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, int]:
    return _along(weight, 2)


def _block_ids(weight: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, int]:
    rows, cols = pattern.block
    out_features, flat_cols = weight.shape[0], weight[0].numel()
    row_ids = torch.arange(out_features).div(rows, rounding_mode="floor").view(-1, 1)
    col_ids = torch.arange(flat_cols).div(cols, rounding_mode="floor").view(1, -1)
    ids = row_ids * (flat_cols // cols) + col_ids
    return ids.view(weight.shape), (out_features // rows) * (flat_cols // cols)


def _nm_ids(weight: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, int]:
    """Group ids of M consecutive input channels at the same (output, kernel position)."""
    m = pattern.m
    out_features, in_features = weight.shape[:2]
    spatial = weight[0, 0].numel()
    o = torch.arange(out_features).view(-1, 1, 1)
    i = torch.arange(in_features).view(1, -1, 1)
    s = torch.arange(spatial).view(1, 1, -1)
    ids = (o * (in_features // m) + i.div(m, rounding_mode="floor")) * spatial + s
    return ids.view(weight.shape), out_features * (in_features // m) * spatial


def _exclude_hint(name: str) -> str:
    return f"exclude it, e.g. exclude=[{name.rpartition('.')[0]!r}]"


def _check_nm(name: str, weight: torch.Tensor, pattern: Pattern) -> None:
    channels = weight.shape[1]
    if channels % pattern.m:
        raise ValueError(
            f"{pattern.n}:{pattern.m} groups {pattern.m} consecutive inputs, but {name!r} has {channels} input "
            f"features/channels (not divisible by {pattern.m}); {_exclude_hint(name)}"
        )


def _check_block(name: str, weight: torch.Tensor, pattern: Pattern) -> None:
    rows, cols = pattern.block
    if weight.shape[0] % rows or weight[0].numel() % cols:
        raise ValueError(
            f"block{rows}x{cols} needs the ({weight.shape[0]} × {weight[0].numel()}) weight view of {name!r} to "
            f"divide into {rows}×{cols} tiles; {_exclude_hint(name)}"
        )


def _parse_nm(text: str) -> Pattern | None:
    if not (match := re.fullmatch(r"(\d+):(\d+)", text)):
        return None
    n, m = int(match[1]), int(match[2])
    if not 0 < n < m:
        raise ValueError(f"N:M pattern needs 0 < N < M, got {text!r}")
    return Pattern("nm", n=n, m=m)


def _parse_block(text: str) -> Pattern | None:
    if not (match := re.fullmatch(r"block(\d+)x(\d+)", text)):
        return None
    rows, cols = int(match[1]), int(match[2])
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise ValueError(f"block pattern needs at least 2 weights per block, got {text!r}")
    return Pattern("block", block=(rows, cols))


def nm_keep(scores: torch.Tensor, ids: torch.Tensor, num_groups: int, pattern: Pattern) -> torch.Tensor:
    """Keep the ``n`` best of every group of ``m`` (ties: lower input index kept first)."""
    n, m = pattern.n, pattern.m
    order = ids.flatten().argsort(stable=True)  # elements grouped, inputs ascending inside a group
    grouped = scores.flatten()[order].view(num_groups, m)
    ranks = grouped.argsort(dim=1, descending=True, stable=True)[:, :n]
    keep_grouped = torch.zeros(num_groups, m, dtype=torch.bool)
    keep_grouped.scatter_(1, ranks, True)
    keep = torch.empty(scores.numel(), dtype=torch.bool)
    keep[order] = keep_grouped.flatten()
    return keep.view(scores.shape)


def _head_targets(model: nn.Module, pattern: Pattern, exclude: tuple[str, ...]) -> list[Target]:
    targets = [
        Target(name, layout.group_ids(name, model.get_submodule(name)), layout.units)
        for name, layout in attention_layouts(model).items()
        if not is_excluded(name, exclude)
    ]
    if not targets:
        raise ValueError(
            "the head pattern needs attention modules with a head count (num_heads, …) and q/k/v or fused qkv "
            "Linear layers; this model has none (not excluded)"
        )
    return targets


for _spec in (
    PatternSpec(
        "unstructured", ("unstructured",), "any single weight", ("unstructured",), _unstructured_ids, elementwise=True
    ),
    PatternSpec(
        "nm",
        (),
        "keep N of every M consecutive inputs (semi-structured)",
        ("2:4",),
        _nm_ids,
        parse=_parse_nm,
        syntax="N:M (e.g. 2:4)",
        check=_check_nm,
        fixed_sparsity=lambda p: 1 - p.n / p.m,
        keep=nm_keep,
    ),
    PatternSpec(
        "block",
        (),
        "R×C tiles of the (out, in·k·k) weight view",
        ("block1x4", "block4x4"),
        _block_ids,
        parse=_parse_block,
        syntax="blockRxC (e.g. block1x4, block4x4)",
        check=_check_block,
    ),
    PatternSpec(
        "kernel",
        ("kernel",),
        "whole k×k kernels of Conv layers",
        ("kernel",),
        _kernel_ids,
        layers=(nn.Conv1d, nn.Conv2d),
    ),
    PatternSpec(
        "output",
        ("neuron", "filter"),
        "output units: rows of a Linear, filters of a Conv",
        ("neuron",),
        _output_ids,
        structured=True,
        coupled="channel",
        skips_last_layer=True,
    ),
    PatternSpec(
        "input",
        ("channel",),
        "input units: columns of a Linear, input channels of a Conv, one layer at a time",
        ("channel",),
        _input_ids,
        structured=True,
    ),
    PatternSpec(
        "head",
        ("head",),
        "attention heads: q/k/v row blocks and out-projection columns",
        ("head",),
        targets=_head_targets,
        structured=True,
        coupled="head",
    ),
):
    register_pattern(_spec)


def build_targets(model: nn.Module, pattern: str | Pattern, exclude=()) -> list[Target]:
    """The selection targets of ``pattern`` on ``model``.

    Layers a pattern does not apply to (kernel on a Linear) are left dense; output-unit patterns leave
    the model's last layer dense, since its outputs are the classes. Raises ValueError when nothing is
    left to prune, a layer's shape does not fit the pattern, or an ``exclude`` entry matches nothing.
    """
    pattern = parse_pattern(pattern)
    spec = pattern.spec
    exclude = check_exclude(model, exclude)
    if spec.targets is not None:
        return spec.targets(model, pattern, exclude)
    layers = {name: m for name, m in prunable_layers(model, exclude).items() if isinstance(m, spec.layers)}
    if spec.skips_last_layer and layers:
        layers.pop(list(prunable_layers(model))[-1], None)
    if not layers:
        kinds = "/".join(sorted({cls.__name__.rstrip("12d") for cls in spec.layers}))
        raise ValueError(
            f"nothing to prune: the {spec.kind} pattern cuts {spec.description}, and no {kinds} layer is left "
            f"(exclude={list(exclude)})"
        )
    targets = []
    for name, layer in layers.items():
        weight_name = qualified(name, "weight")
        if spec.check is not None:
            spec.check(weight_name, layer.weight, pattern)
        ids, count = spec.group_ids(layer.weight, pattern)
        targets.append(Target(name, {weight_name: ids}, count, elementwise=spec.elementwise))
    return targets

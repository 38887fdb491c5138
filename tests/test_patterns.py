"""Patterns: parsing names, group ids covering each weight once, and the structure of the masks they produce.

The ``check_*`` helpers verify mask structure with plain reshapes, independent of how
``workbench.patterns`` computes group ids; ``test_pruner.py`` reuses them.
"""

from __future__ import annotations

import re

import pytest
import torch
from helpers import assert_same_state, state_copy
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import workbench as wb
from workbench.patterns import Pattern, build_targets, parse_pattern

# ---- structure checkers (implementation independent) ----


def _as_2d(mask: torch.Tensor) -> torch.Tensor:
    """(out, in·k·k) view, the layout block patterns tile."""
    return mask.reshape(mask.shape[0], -1)


def check_nm(mask: torch.Tensor, n: int, m: int, scores: torch.Tensor | None = None) -> None:
    """Every M consecutive inputs at the same (output, kernel position) keep exactly N (the N best, given scores)."""
    out, inputs = mask.shape[:2]

    def grouped(t):  # (out, in, *k) → (out, *k, in/m, m)
        return t.movedim(1, -1).reshape(out, *t.shape[2:], inputs // m, m)

    kept = grouped(mask)
    assert bool((kept.sum(-1) == n).all()), "an N:M group does not keep exactly N"
    if scores is not None:
        s = grouped(scores.double())
        lowest_kept = torch.where(kept, s, torch.tensor(float("inf"), dtype=s.dtype)).amin(-1)
        highest_pruned = torch.where(~kept, s, torch.tensor(float("-inf"), dtype=s.dtype)).amax(-1)
        assert bool((lowest_kept >= highest_pruned).all()), "an N:M group pruned a better weight than it kept"


def check_blocks(mask: torch.Tensor, rows: int, cols: int) -> None:
    view = _as_2d(mask)
    tiles = view.reshape(view.shape[0] // rows, rows, view.shape[1] // cols, cols).permute(0, 2, 1, 3).flatten(2)
    assert bool((tiles.all(-1) | ~tiles.any(-1)).all()), f"a {rows}x{cols} tile is partly pruned"


def check_kernels(mask: torch.Tensor) -> None:
    assert mask.dim() >= 3
    kernels = mask.flatten(2)
    assert bool((kernels.all(-1) | ~kernels.any(-1)).all()), "a k×k kernel is partly pruned"


def check_rows(mask: torch.Tensor) -> None:
    rows = mask.flatten(1)
    assert bool((rows.all(-1) | ~rows.any(-1)).all()), "an output unit is partly pruned"


def check_columns(mask: torch.Tensor) -> None:
    columns = mask.transpose(0, 1).flatten(1)
    assert bool((columns.all(-1) | ~columns.any(-1)).all()), "an input column/channel is partly pruned"


def head_keep(model: nn.Module, attention_name: str, masks: dict[str, torch.Tensor]) -> torch.Tensor:
    """Which heads of one attention module are kept; asserts q/k/v rows and out columns agree per head."""
    attention = model.get_submodule(attention_name)
    h, d = attention.num_heads, attention.head_dim
    per_part = []
    for part in ("q", "k", "v"):
        rows = masks[f"{attention_name}.{part}.weight"].reshape(h, -1)  # head h = rows h·d … (h+1)·d
        assert bool((rows.all(-1) | ~rows.any(-1)).all()), f"{part}: a head is partly pruned"
        per_part.append(rows.all(-1))
    out = masks[f"{attention_name}.out.weight"]
    columns = out.reshape(out.shape[0], h, d).transpose(0, 1).flatten(1)
    assert bool((columns.all(-1) | ~columns.any(-1)).all()), "out: a head's columns are partly pruned"
    per_part.append(columns.all(-1))
    for other in per_part[1:]:
        assert torch.equal(other, per_part[0]), "q/k/v/out disagree on which heads are kept"
    return per_part[0]


def check_structure(pattern: str, masks: dict[str, torch.Tensor], model: nn.Module, scores=None) -> None:
    """Assert that ``masks`` have the structure ``pattern`` promises."""
    p = parse_pattern(pattern)
    if p.kind == "head":
        for attention_name in {name.rsplit(".", 2)[0] for name in masks}:
            head_keep(model, attention_name, masks)
        return
    for name, mask in masks.items():
        if p.kind == "nm":
            check_nm(mask, p.n, p.m, None if scores is None else scores[name])
        elif p.kind == "block":
            check_blocks(mask, *p.block)
        elif p.kind == "kernel":
            check_kernels(mask)
        elif p.kind == "output":
            check_rows(mask)
        elif p.kind == "input":
            check_columns(mask)


# ---- parse_pattern ----


@pytest.mark.parametrize(
    "text, expected",
    [
        ("unstructured", Pattern("unstructured")),
        ("kernel", Pattern("kernel")),
        ("neuron", Pattern("output")),
        ("filter", Pattern("output")),
        ("channel", Pattern("input")),
        ("head", Pattern("head")),
        ("2:4", Pattern("nm", n=2, m=4)),
        ("1:4", Pattern("nm", n=1, m=4)),
        ("4:8", Pattern("nm", n=4, m=8)),
        ("block1x4", Pattern("block", block=(1, 4))),
        ("block4x4", Pattern("block", block=(4, 4))),
        ("block2x1", Pattern("block", block=(2, 1))),
        ("  Block4X2 ", Pattern("block", block=(4, 2))),
        ("NEURON", Pattern("output")),
    ],
)
def test_parse_pattern_names(text, expected):
    assert parse_pattern(text) == expected
    assert parse_pattern(expected) is expected


def test_pattern_properties():
    assert parse_pattern("2:4").fixed_sparsity == 0.5
    assert parse_pattern("1:4").fixed_sparsity == 0.75
    assert parse_pattern("unstructured").fixed_sparsity is None
    assert {
        k
        for k in ("unstructured", "2:4", "block4x4", "kernel", "neuron", "channel", "head")
        if parse_pattern(k).structured
    } == {"neuron", "channel", "head"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "foo",
        "neurons",
        "4:4",
        "5:4",
        "0:4",
        "2:0",
        "-1:4",
        "2:4:8",
        "2/4",
        "block1x1",
        "block0x4",
        "block4x0",
        "block4",
        "block",
        "blockaxb",
        "4x4",
        None,
        3,
    ],
)
def test_parse_pattern_rejects_bad_names(text):
    with pytest.raises(ValueError, match=r"pattern"):
        parse_pattern(text)


@given(n=st.integers(0, 20), m=st.integers(0, 20))
@settings(max_examples=40, deadline=None)
def test_parse_nm_valid_iff_0_lt_n_lt_m(n, m):
    if 0 < n < m:
        p = parse_pattern(f"{n}:{m}")
        assert (p.kind, p.n, p.m) == ("nm", n, m)
        assert p.fixed_sparsity == pytest.approx(1 - n / m)
    else:
        with pytest.raises(ValueError):
            parse_pattern(f"{n}:{m}")


@given(r=st.integers(0, 9), c=st.integers(0, 9))
@settings(max_examples=40, deadline=None)
def test_parse_block_valid_iff_two_or_more_weights(r, c):
    if r >= 1 and c >= 1 and r * c >= 2:
        assert parse_pattern(f"block{r}x{c}").block == (r, c)
    else:
        with pytest.raises(ValueError):
            parse_pattern(f"block{r}x{c}")


# ---- build_targets: every element in exactly one group ----


COVERING = [  # (model, pattern, exclude)
    ("mlp", "unstructured", ()),
    ("cnn", "unstructured", ()),
    ("mlp", "block1x4", ()),
    ("mlp", "block2x2", ()),
    ("cnn", "block4x4", ("stem.0", "fc")),
    ("cnn", "block2x1", ()),
    ("cnn", "kernel", ()),
    ("mlp", "neuron", ()),
    ("cnn", "filter", ()),
    ("transformer", "neuron", ()),
    ("mlp", "channel", ()),
    ("cnn", "channel", ()),
    ("transformer", "head", ()),
    ("mlp", "2:4", ()),
    ("cnn", "2:4", ("stem.0",)),
]


def _group_of(pattern: Pattern, name: str, shape, model) -> torch.Tensor:
    """Expected partition of a weight into groups, as canonical labels, computed from the pattern's meaning."""
    index = torch.arange(torch.Size(shape).numel()).view(shape)
    out_idx = torch.arange(shape[0]).view(-1, *[1] * (len(shape) - 1)).expand(shape)
    in_idx = torch.arange(shape[1]).view(1, -1, *[1] * (len(shape) - 2)).expand(shape)
    if pattern.kind == "unstructured":
        return index
    if pattern.kind == "output":
        return out_idx
    if pattern.kind == "input":
        return in_idx
    if pattern.kind == "kernel":
        return out_idx * shape[1] + in_idx
    if pattern.kind == "block":
        r, c = pattern.block
        flat = index.reshape(shape[0], -1)
        cols = torch.arange(flat.shape[1]).view(1, -1).expand_as(flat)
        rows = torch.arange(shape[0]).view(-1, 1).expand_as(flat)
        return ((rows // r) * (flat.shape[1] // c) + cols // c).view(shape)
    if pattern.kind == "nm":
        spatial = index.reshape(shape[0], shape[1], -1)
        pos = torch.arange(spatial.shape[2]).view(1, 1, -1).expand_as(spatial)
        o = torch.arange(shape[0]).view(-1, 1, 1).expand_as(spatial)
        i = torch.arange(shape[1]).view(1, -1, 1).expand_as(spatial)
        return ((o * (shape[1] // pattern.m) + i // pattern.m) * spatial.shape[2] + pos).view(shape)
    raise AssertionError(pattern)


def _same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Do two label tensors cut the elements into the same groups (labels may differ)?"""
    pairs = torch.stack([a.flatten(), b.flatten()], 1).unique(dim=0)
    return len(pairs) == len(a.flatten().unique()) == len(b.flatten().unique())


@pytest.mark.parametrize("model_name, pattern, exclude", COVERING)
def test_targets_partition_every_weight(shipped, model_name, pattern, exclude):
    model = shipped(model_name)
    p = parse_pattern(pattern)
    targets = build_targets(model, pattern, exclude)
    assert targets
    seen = set()
    for target in targets:
        numel = 0
        ids_all = []
        for name, ids in target.group_ids.items():
            weight = model.get_parameter(name)
            assert name not in seen
            seen.add(name)
            assert ids.shape == weight.shape and ids.dtype == torch.long
            assert bool((ids >= 0).all()) and bool((ids < target.num_groups).all())  # every element in a group
            numel += weight.numel()
            ids_all.append(ids.flatten())
            if p.kind != "head":
                assert _same_partition(ids, _group_of(p, name, weight.shape, model)), f"{name}: wrong groups"
        assert int(target.group_sizes.sum()) == numel == target.numel
        counts = torch.bincount(torch.cat(ids_all), minlength=target.num_groups)
        assert torch.equal(counts, target.group_sizes)
        assert bool((counts > 0).all())  # no empty group
    if p.kind == "head":
        for target in targets:
            attention = model.get_submodule(target.name)
            assert target.num_groups == attention.num_heads
            assert set(target.group_sizes.tolist()) == {4 * attention.head_dim * model.config.dim}


@pytest.mark.parametrize("pattern", ["neuron", "filter"])
@pytest.mark.parametrize("model_name, last", [("mlp", "fc3"), ("cnn", "fc"), ("transformer", "head")])
def test_output_patterns_leave_last_layer_dense(shipped, model_name, last, pattern):
    model = shipped(model_name)
    names = [t.name for t in build_targets(model, pattern)]
    assert last not in names
    assert names == [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d)) and n != last]


# ---- masks from the Pruner have the promised structure ----


@pytest.mark.parametrize(
    "model_name, pattern, exclude",
    [
        ("mlp", "2:4", ()),
        ("mlp", "1:4", ()),
        ("mlp", "4:8", ("fc2", "fc3")),  # 300 and 100 inputs
        ("cnn", "2:4", ("stem.0",)),
        ("cnn", "1:4", ("stem.0",)),
        ("cnn", "4:8", ("stem.0",)),
        ("transformer", "2:4", ()),
    ],
)
def test_nm_masks_keep_exactly_n_of_every_m(shipped, model_name, pattern, exclude):
    model = shipped(model_name)
    pruner = wb.Pruner(model, "magnitude", pattern, exclude=exclude)
    masks = pruner.masks()
    p = parse_pattern(pattern)
    expected = {
        f"{n}.weight" for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d)) and n not in exclude
    }
    assert set(masks) == expected
    for name, mask in masks.items():
        weight = model.get_parameter(name)
        assert mask.shape == weight.shape and mask.dtype == torch.bool
        check_nm(mask, p.n, p.m, scores=weight.detach().abs())
        assert int((~mask).sum()) == weight.numel() * (p.m - p.n) // p.m


@pytest.mark.parametrize(
    "model_name, pattern, exclude",
    [
        ("mlp", "block1x4", ()),
        ("mlp", "block4x4", ("fc3",)),
        ("cnn", "block4x4", ("stem.0", "fc")),
        ("cnn", "block2x2", ("stem.0",)),
        ("transformer", "block2x8", ("patch_embed",)),
    ],
)
@pytest.mark.parametrize("scope", ["local", "global"])
def test_block_masks_are_whole_tiles(shipped, model_name, pattern, exclude, scope):
    model = shipped(model_name)
    masks = wb.Pruner(model, "magnitude", pattern, scope, exclude=exclude).masks(0.6)
    rows, cols = parse_pattern(pattern).block
    for mask in masks.values():
        check_blocks(mask, rows, cols)
        assert int((~mask).sum()) < mask.numel()
        if scope == "local":
            assert int((~mask).sum()) == round(0.6 * mask.numel() / (rows * cols)) * rows * cols


@pytest.mark.parametrize("scope", ["local", "global"])
def test_kernel_masks_are_whole_kernels(shipped, scope):
    model = shipped("cnn")
    masks = wb.Pruner(model, "magnitude", "kernel", scope).masks(0.5)
    assert set(masks) == {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    for mask in masks.values():
        check_kernels(mask)


@pytest.mark.parametrize("model_name, pattern", [("mlp", "neuron"), ("cnn", "filter"), ("transformer", "neuron")])
@pytest.mark.parametrize("scope", ["local", "global"])
def test_output_masks_are_whole_rows_and_last_layer_untouched(shipped, model_name, pattern, scope):
    model = shipped(model_name)
    last = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    last_weight = model.get_parameter(f"{last}.weight").detach().clone()
    result = wb.prune(model, sparsity=0.5, pattern=pattern, scope=scope)
    assert f"{last}.weight" not in result.masks
    assert torch.equal(model.get_parameter(f"{last}.weight"), last_weight)
    for mask in result.masks.values():
        check_rows(mask)


@pytest.mark.parametrize("model_name", ["mlp", "cnn", "transformer"])
def test_channel_masks_are_whole_inputs(shipped, model_name):
    model = shipped(model_name)
    masks = wb.Pruner(model, "magnitude", "channel").masks(0.5)
    for mask in masks.values():
        check_columns(mask)
        columns = mask.transpose(0, 1).flatten(1).all(-1)
        assert int((~columns).sum()) == round(0.5 * mask.shape[1])


@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.75])
def test_head_masks_prune_q_k_v_rows_and_out_columns_together(shipped, sparsity):
    model = shipped("transformer")
    masks = wb.Pruner(model, "magnitude", "head").masks(sparsity)
    attention_names = [f"blocks.{i}.attn" for i in range(model.config.depth)]
    assert set(masks) == {f"{a}.{p}.weight" for a in attention_names for p in ("q", "k", "v", "out")}
    for a in attention_names:
        keep = head_keep(model, a, masks)
        assert len(keep) == model.get_submodule(a).num_heads == model.config.num_heads
        assert int((~keep).sum()) == round(sparsity * model.config.num_heads)


def test_head_pattern_follows_num_heads_and_head_dim():
    torch.manual_seed(0)
    model = wb.build_model("transformer", num_heads=3, head_dim=8, depth=1)  # inner width 24 ≠ dim 64
    targets = build_targets(model, "head")
    assert [t.num_groups for t in targets] == [3]
    masks = wb.Pruner(model, "random", "head").masks(0.34)
    keep = head_keep(model, "blocks.0.attn", masks)
    assert int((~keep).sum()) == 1


# ---- inapplicable patterns: ValueError, model unchanged ----


@pytest.mark.parametrize(
    "model_name, pattern, exclude, message",
    [
        ("mlp", "kernel", (), "Conv"),
        ("transformer", "kernel", (), "Conv"),
        ("mlp", "head", (), "attention"),
        ("cnn", "head", (), "attention"),
        ("cnn", "2:4", (), "stem.0"),  # 1 input channel
        ("mlp", "4:8", ("fc2",), "fc3"),  # 100 inputs
        ("mlp", "block4x4", (), "fc3"),  # 10 outputs
        ("cnn", "block1x4", (), "stem.0"),  # 1·3·3 = 9 columns
        ("mlp", "unstructured", ("fc*",), "nothing to prune"),
        ("mlp", "neuron", ("fc1", "fc2"), "nothing to prune"),  # fc3 is the output layer
        ("transformer", "head", ("blocks.*",), "attention"),
    ],
)
def test_inapplicable_pattern_raises_and_leaves_model_unchanged(shipped, model_name, pattern, exclude, message):
    model = shipped(model_name)
    before = state_copy(model)
    with pytest.raises(ValueError, match=message):
        wb.prune(model, sparsity=0.5 if parse_pattern(pattern).kind != "nm" else None, pattern=pattern, exclude=exclude)
    assert_same_state(state_copy(model), before)
    assert not wb.masks.is_masked(model)


# ---- exclude ----


def test_exclude_by_name_and_glob(shipped):
    cnn = shipped("cnn")
    all_names = [t.name for t in build_targets(cnn, "unstructured")]
    assert all_names == ["stem.0", "block1.conv1", "block1.conv2", "down.0", "block2.conv1", "block2.conv2", "fc"]
    assert [t.name for t in build_targets(cnn, "unstructured", ("fc",))] == all_names[:-1]
    assert [t.name for t in build_targets(cnn, "unstructured", ("block1.*",))] == [
        "stem.0",
        "down.0",
        "block2.conv1",
        "block2.conv2",
        "fc",
    ]
    assert [t.name for t in build_targets(cnn, "unstructured", ("*.conv2", "stem.0"))] == [
        "block1.conv1",
        "down.0",
        "block2.conv1",
        "fc",
    ]
    for unmatched in ("nothing*", "block"):  # a name matches whole names only
        with pytest.raises(
            ValueError, match=rf"exclude '{re.escape(unmatched)}' matches no layer of CNN.*stem\.0, block1"
        ):
            build_targets(cnn, "unstructured", (unmatched,))
    transformer = shipped("transformer")
    assert [t.name for t in build_targets(transformer, "head", ("blocks.0.*",))] == ["blocks.1.attn"]


def test_exclude_string_in_prune_means_one_name(shipped):
    model = shipped("mlp")
    result = wb.prune(model, sparsity=0.5, exclude="fc3")
    assert set(result.masks) == {"fc1.weight", "fc2.weight"}
    assert not torch.nn.utils.parametrize.is_parametrized(model.fc3)

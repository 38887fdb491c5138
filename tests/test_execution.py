"""Execution modes: every way of running a pruned model computes the dense-masked function, and says honestly what
it could not make sparse; compare_modes measures them side by side without touching the model."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.execution import MODES, SparseLinear, build_mode
from workbench.masks import get_masks, plain_state_dict
from workbench.measure import compare_modes, tensor_bytes

INPUTS = {"mlp": torch.randn(16, 64, generator=torch.Generator().manual_seed(0)), "cnn": torch.randn(8, 1, 8, 8)}
INPUTS["transformer"] = INPUTS["cnn"]
CASES = [
    ("mlp", {"sparsity": 0.9}),
    ("mlp", {"sparsity": None, "pattern": "2:4"}),
    ("mlp", {"sparsity": 0.75, "pattern": "block4x4", "exclude": ["fc3"]}),
    ("mlp", {"sparsity": 0.5, "pattern": "neuron"}),
    ("cnn", {"sparsity": 0.5, "pattern": "filter"}),
    ("transformer", {"sparsity": 0.8}),
]


def pruned(name: str, **options) -> torch.nn.Module:
    model = wb.pretrained(name)
    wb.prune(model, **options)
    return model


@pytest.mark.parametrize(("name", "options"), CASES)
def test_every_available_mode_computes_the_dense_masked_function(name, options):
    model, x = pruned(name, **options), INPUTS[name]
    with torch.no_grad():
        expected = build_mode(model, "dense", x).model(x)
        assert torch.equal(model.eval()(x), expected), "baking the masks changes nothing"
        for mode in MODES:
            built = build_mode(model, mode, x, device="cpu")
            if built.available:
                assert torch.allclose(built.model(x), expected, atol=1e-5), mode
            else:
                assert built.reason and "\n" not in built.reason, mode


def test_linear_layers_become_sparse_and_convolutions_say_why_they_stay_dense():
    model = pruned("cnn", sparsity=0.8)
    built = build_mode(model, "csr", INPUTS["cnn"])
    assert built.sparse_layers == ["fc"]
    assert isinstance(built.model.fc, SparseLinear) and built.model.fc.weight.layout == torch.sparse_csr
    assert built.dense_layers["stem.0"] == "convolution: torch has no sparse convolution kernels"
    assert built.model.fc.weight.values().numel() == int(get_masks(model)["fc.weight"].sum())


def test_bsr_uses_the_pattern_blocks_and_names_layers_whose_blocks_store_zeros():
    blocks = build_mode(pruned("mlp", sparsity=0.75, pattern="block4x4", exclude=["fc3"]), "bsr", INPUTS["mlp"])
    assert blocks.reason == "" and blocks.model.fc1.weight.values().shape[1:] == (4, 4)
    assert blocks.dense_layers == {"fc3": "not pruned"}
    scattered = build_mode(pruned("mlp", sparsity=0.9), "bsr", INPUTS["mlp"])
    assert scattered.reason == "fc1, fc2, fc3: masks not block-structured, so their 2×2 blocks store zeros"
    transformer = build_mode(pruned("transformer", sparsity=0.9), "bsr", INPUTS["transformer"])
    assert transformer.reason.startswith("patch_embed, blocks.0.attn.q, blocks.0.attn.k and 11 more: masks not")


def test_modes_that_cannot_run_here_are_unavailable_with_a_reason_never_an_error():
    model = pruned("mlp", sparsity=None, pattern="2:4")
    if not torch.cuda.is_available():
        assert build_mode(model, "semi_structured", INPUTS["mlp"]).reason == "2:4 kernels need a CUDA GPU; none here"
    unstructured = pruned("cnn", sparsity=0.3)
    shrunk = build_mode(unstructured, "shrunk", INPUTS["cnn"])
    assert not shrunk.available and shrunk.reason.startswith("nothing to remove")
    with pytest.raises(ValueError, match="unknown mode 'coo'; choose from dense, masked, csr"):
        build_mode(model, "coo", INPUTS["mlp"])


def test_compare_modes_measures_every_mode_and_batch_and_leaves_the_model_untouched():
    model = pruned("mlp", sparsity=0.9)
    before_state, before_masks = plain_state_dict(model), get_masks(model)
    table = compare_modes(model, INPUTS["mlp"], batch_sizes=(1, 32), threads=1, min_run_time=0.02, device="cpu")
    assert list(table["mode"]) == list(MODES) * 2 and list(table["batch"]) == [1] * 6 + [32] * 6
    available = table[table["available"]]
    assert set(available["mode"]) == set(MODES) - {"semi_structured"}
    assert (available["max_abs_diff"] < 1e-5).all()
    dense = available[available["mode"] == "dense"]
    assert (dense["speedup"] == 1).all() and (available["threads"] == 1).all()
    csr = available[available["mode"] == "csr"].iloc[0]
    assert csr["bytes"] < dense.iloc[0]["bytes"] / 3, "at 90 % CSR stores about a fifth of the dense bytes"
    assert csr["nonzero"] == dense.iloc[0]["nonzero"] and csr["flops"] < dense.iloc[0]["flops"] / 5
    masked = available[available["mode"] == "masked"].iloc[0]
    assert masked["bytes"] > dense.iloc[0]["bytes"], "a masked model stores the dense originals and the masks"
    assert all(torch.equal(v, plain_state_dict(model)[k]) for k, v in before_state.items())
    assert all(torch.equal(m, get_masks(model)[k]) for k, m in before_masks.items())


def test_compare_modes_refuses_bad_arguments_in_one_line():
    model = pruned("mlp", sparsity=0.5)
    with pytest.raises(ValueError, match=r"unknown modes \['sparse'\]"):
        compare_modes(model, INPUTS["mlp"], modes=["csr", "sparse"])
    with pytest.raises(ValueError, match="batch_sizes must be positive integers"):
        compare_modes(model, INPUTS["mlp"], batch_sizes=(0,))


@settings(max_examples=15, deadline=None)
@given(
    rows=st.integers(1, 40),
    columns=st.sampled_from([4, 8, 12, 32]),
    sparsity=st.floats(0.0, 1.0),
    layout=st.sampled_from(["csr", "bsr"]),
)
def test_sparse_linear_equals_the_dense_layer(rows, columns, sparsity, layout):
    generator = torch.Generator().manual_seed(rows * columns)
    layer = torch.nn.Linear(columns, rows)
    with torch.no_grad():
        layer.weight.mul_(torch.rand(layer.weight.shape, generator=generator) >= sparsity)
    blocksize = (1, 1) if layout == "bsr" else None
    sparse = SparseLinear(layer, layout, blocksize)
    x = torch.randn(3, 5, columns, generator=generator)
    assert torch.allclose(sparse(x), layer(x), atol=1e-5)
    kept = int(torch.count_nonzero(layer.weight))
    index = sparse.weight.col_indices().element_size()  # torch's default: int64
    assert tensor_bytes(sparse) == (rows + 1) * index + kept * (index + 4) + 4 * rows, "row pointers, columns, values"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_two_four_runs_on_the_gpu_and_matches_in_half_precision():
    model = wb.build_model("mlp", hidden=(256, 256))
    wb.prune(model, sparsity=None, pattern="2:4", exclude=["fc3"])
    x = torch.randn(64, 64)
    table = compare_modes(model, x, modes=("dense", "semi_structured"), batch_sizes=(64,), device="cuda")
    row = table[table["mode"] == "semi_structured"].iloc[0]
    if row["available"]:
        assert row["max_abs_diff"] < 0.05 and row["peak_mb"] > 0
    else:
        assert row["note"]

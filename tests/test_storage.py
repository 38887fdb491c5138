"""Sparse files (``wb.save_sparse`` / ``wb.load_sparse``): bit-exact round trips, the size targets, no pickle,
one-line refusals of bad files, saves that never leave half a file, fp16 marked lossy, and the storage report."""

from __future__ import annotations

import io
import os
import pickle
import stat

import pytest
import torch
from helpers import assert_same_state, state_copy
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import workbench as wb
from workbench import storage_format
from workbench.masks import apply_masks, bake, dense_parameter, get_masks, plain_state_dict
from workbench.storage import read_sparse
from workbench.storage_encodings import ENCODINGS, nm_pattern
from workbench.storage_format import FORMAT_VERSION, MAGIC, PREAMBLE, pack, unpack
from workbench.storage_report import BOUND, PARTS, binary_entropy
from workbench.structure.shrink import default_inputs
from workbench.viz.storage import plot_storage

NAN_WITH_PAYLOAD = torch.tensor([0x7FC01234], dtype=torch.int32).view(torch.float32)


def one_line_error(call, *args, **kwargs) -> str:
    """The message of the ValueError ``call`` raises, checked to be one line with nothing shown beneath it."""
    with pytest.raises(ValueError) as caught:
        call(*args, **kwargs)
    message, error = str(caught.value), caught.value
    assert "\n" not in message, message
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return message


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))
    )


def dense_file_bytes(model: nn.Module) -> int:
    """Bytes of a plain dense ``torch.save`` of ``model``'s state_dict."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def assert_round_trip(model: nn.Module, again: nn.Module) -> None:
    """Same masks; kept values bit for bit; pruned originals zero; every other tensor bit for bit."""
    masks, loaded = get_masks(model), get_masks(again)
    assert masks.keys() == loaded.keys() and all(torch.equal(masks[name], loaded[name]) for name in masks)
    for name, mask in masks.items():
        assert same_bits(dense_parameter(again, name)[mask], dense_parameter(model, name).detach()[mask]), name
        assert not dense_parameter(again, name)[~mask].view(torch.int32).any(), f"{name}: pruned originals are +0.0"
    state, state_again = plain_state_dict(model), plain_state_dict(again)
    assert state.keys() == state_again.keys()
    for name in state.keys() - masks.keys():
        assert same_bits(state_again[name], state[name]), name


def prune_shipped(model: nn.Module, name: str, pattern: str, sparsity: float | None) -> None:
    exclude = ("stem.0",) if (name, pattern) == ("cnn", "2:4") else ()  # its 1-channel stem has no groups of 4 inputs
    wb.prune(model, sparsity=sparsity, pattern=pattern, exclude=exclude)


@pytest.mark.parametrize(
    "name,pattern,sparsity",
    [
        ("mlp", "unstructured", 0.9),
        ("cnn", "unstructured", 0.9),
        ("mlp", "2:4", None),
        ("cnn", "2:4", None),
        ("cnn", "filter", 0.5),
        ("transformer", "head", 0.5),
    ],
)
def test_shipped_models_round_trip_bit_exactly(shipped, tmp_path, name, pattern, sparsity):
    model = shipped(name)
    prune_shipped(model, name, pattern, sparsity)
    wb.save_sparse(model, tmp_path / "model.sparse")
    again = wb.load_sparse(tmp_path / "model.sparse")
    assert_round_trip(model, again)
    state, state_again = plain_state_dict(model), plain_state_dict(again)
    assert all(torch.equal(state[key], state_again[key]) for key in state)  # the masked weights too
    inputs = default_inputs(model, 4)
    assert not again.training and torch.equal(again(*inputs), model(*inputs))


@pytest.mark.parametrize("pattern,share", [("unstructured", 0.13), ("2:4", 0.60)])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_size_targets_against_a_dense_torch_save(shipped, tmp_path, name, pattern, share):
    model = shipped(name)
    dense = dense_file_bytes(model)
    prune_shipped(model, name, pattern, 0.9 if pattern == "unstructured" else None)
    size = wb.save_sparse(model, tmp_path / "model.sparse")
    assert size == (tmp_path / "model.sparse").stat().st_size
    assert size <= share * dense, f"{size:,} bytes, {size / dense:.1%} of the dense file's {dense:,}"


def test_two_n_m_masks_take_the_nm_encoding(shipped):
    model = shipped("mlp")
    wb.prune(model, sparsity=None, pattern="2:4")
    report = wb.storage_report(model)
    chosen = {row["name"]: row["encoding"] for row in report.tensors}
    assert chosen["fc1.weight"] == chosen["fc2.weight"] == "nm" and chosen["fc1.bias"] == "dense"


@st.composite
def masked_models(draw):
    """A Linear and a Conv2d of random sizes, masked at a random sparsity in [0, 1] with a random pattern, their
    weights sprinkled with -0.0, +0.0, a NaN with a payload, -inf and a subnormal."""
    out_features, in_features, channels = (
        draw(st.integers(1, 6)),
        draw(st.sampled_from([4, 8])),
        draw(st.sampled_from([4, 8])),
    )
    model = nn.ModuleDict(
        {"fc": nn.Linear(in_features, out_features), "conv": nn.Conv2d(channels, out_features, draw(st.integers(1, 3)))}
    )
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    pattern, sparsity = draw(st.sampled_from(["unstructured", "2:4", "neuron/filter"])), draw(st.floats(0, 1))
    masks = {}
    for name in ("fc.weight", "conv.weight"):
        weight = dense_parameter(model, name)
        with torch.no_grad():
            specials = torch.cat([torch.tensor([-0.0, 0.0, -float("inf"), 1e-40]), NAN_WITH_PAYLOAD])
            spots = torch.randperm(weight.numel(), generator=generator)[: len(specials)]
            weight.view(-1)[spots] = specials[: len(spots)]
        masks[name] = random_mask(weight.shape, pattern, sparsity, generator)
    apply_masks(model, masks)
    return model, lambda: nn.ModuleDict(
        {
            "fc": nn.Linear(in_features, out_features),
            "conv": nn.Conv2d(channels, out_features, model["conv"].kernel_size),
        }
    )


def random_mask(shape, pattern: str, sparsity: float, generator) -> torch.Tensor:
    """A random mask: 2 of every 4 inputs (2:4), or ``round(sparsity × units)`` weights or rows pruned."""
    if pattern == "2:4":
        moved = (shape[0], *shape[2:], shape[1])
        ranks = torch.rand(moved, generator=generator).view(-1, 4).argsort(dim=1).argsort(dim=1)
        return (ranks < 2).view(moved).movedim(-1, 1).contiguous()
    units = shape[0] if pattern == "neuron/filter" else torch.Size(shape).numel()
    keep = torch.ones(units, dtype=torch.bool)
    keep[torch.randperm(units, generator=generator)[: round(sparsity * units)]] = False
    return (
        keep.view(-1, *[1] * (len(shape) - 1)).expand(shape).clone() if pattern == "neuron/filter" else keep.view(shape)
    )


@given(masked_models(), st.sampled_from(["auto", *ENCODINGS]))
def test_any_mask_and_any_bit_pattern_round_trip_in_every_encoding(tmp_path_factory, drawn, encoding):
    model, build = drawn
    path = tmp_path_factory.mktemp("sparse") / "model.sparse"
    if encoding == "nm" and any(nm_pattern(mask) is None for mask in get_masks(model).values()):
        assert "does not fit" in one_line_error(wb.save_sparse, model, path, encoding=encoding)
        assert not path.exists()
        return
    wb.save_sparse(model, path, encoding=encoding)
    assert_round_trip(model, wb.load_sparse(path, template=build()))
    encodings = set(read_sparse(path).encodings[name] for name in get_masks(model))
    assert encodings <= set(ENCODINGS) and (encoding == "auto" or encodings == {encoding})


def test_the_file_holds_the_pruned_model_not_the_pruned_originals(shipped, tmp_path):
    model = shipped("mlp")
    wb.prune(model, sparsity=0.8)
    other = shipped("mlp")
    apply_masks(other, get_masks(model))
    with torch.no_grad():
        for name, mask in get_masks(other).items():
            dense_parameter(other, name)[~mask] = 7.0  # different pruned originals, the same pruned model
    wb.save_sparse(model, tmp_path / "a.sparse")
    wb.save_sparse(other, tmp_path / "b.sparse")
    assert (tmp_path / "a.sparse").read_bytes() == (tmp_path / "b.sparse").read_bytes()


def test_loading_never_unpickles(shipped, tmp_path, monkeypatch):
    model = shipped("cnn")
    wb.prune(model, sparsity=0.5)
    wb.save_sparse(model, tmp_path / "model.sparse")
    assert (tmp_path / "model.sparse").read_bytes().startswith(MAGIC)

    def refuse(*args, **kwargs):
        raise AssertionError("a sparse file is never unpickled")

    for module, name in [(pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (torch, "load")]:
        monkeypatch.setattr(module, name, refuse)
    assert_round_trip(model, wb.load_sparse(tmp_path / "model.sparse"))


@pytest.fixture
def saved(shipped, tmp_path):
    model = shipped("mlp")
    wb.prune(model, sparsity=0.9)
    path = tmp_path / "model.sparse"
    wb.save_sparse(model, path)
    return path


def _flip(raw: bytes, at: int) -> bytes:
    return raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1 :]


def _version(raw: bytes, version: int) -> bytes:
    return raw[:8] + version.to_bytes(2, "little") + raw[10:]


@pytest.mark.parametrize(
    "damage,why",
    [
        (lambda raw: b"", "is empty"),
        (lambda raw: b"hello, these are not weights\n", "is not a sparse model file"),
        (lambda raw: bytes(range(256)) * 4, "is not a sparse model file"),
        (lambda raw: b"PK\x03\x04" + raw[4:], "is not a sparse model file"),
        (lambda raw: _flip(raw, 0), "is not a sparse model file"),
        (lambda raw: raw[:4], "is truncated"),
        (lambda raw: raw[:30], "is truncated: 30 bytes, shorter than the 58-byte preamble"),
        (lambda raw: raw[: len(raw) // 2], "is truncated"),
        (lambda raw: raw + b"\0\0\0", "has 3 bytes after the"),
        (lambda raw: _version(raw, FORMAT_VERSION + 1), "reads 1 (a newer workbench wrote it)"),
        (lambda raw: _version(raw, 0), "is in sparse format version 0"),
        (lambda raw: _flip(raw, PREAMBLE.size + 3), "is damaged: its checksum does not match"),
        (lambda raw: _flip(raw, len(raw) - 5), "is damaged: its checksum does not match"),
        (lambda raw: _flip(raw, 30), "is damaged: its checksum does not match"),
    ],
    ids=[
        "empty",
        "text",
        "random bytes",
        "a zip",
        "wrong magic",
        "cut in the magic",
        "cut in the preamble",
        "cut in half",
        "trailing bytes",
        "newer version",
        "version 0",
        "flipped header byte",
        "flipped payload byte",
        "flipped checksum byte",
    ],
)
def test_a_bad_file_is_refused_in_one_line_naming_it(saved, damage, why):
    saved.write_bytes(damage(saved.read_bytes()))
    message = one_line_error(wb.load_sparse, saved)
    assert message.startswith(f"{saved} ") and why in message, message


def test_a_missing_file_or_a_folder_cannot_be_read(tmp_path):
    assert one_line_error(wb.load_sparse, tmp_path / "none.sparse").startswith(
        f"{tmp_path / 'none.sparse'} cannot be read"
    )
    assert one_line_error(wb.load_sparse, tmp_path).startswith(f"{tmp_path} cannot be read")


def _repack(path, edit) -> None:
    """Rewrite the file at ``path`` with ``edit`` applied to its header, checksum recomputed (as a foreign writer)."""
    header, buffers = unpack(path)
    payload = bytes(buffers.payload)
    header, payload = edit(header, payload)
    path.write_bytes(pack(header, [("raw", payload, len(payload))]))


@pytest.mark.parametrize(
    "edit,why",
    [
        (lambda h, p: ({**h, "tensors": None}, p), "is damaged: its header lists no tensors"),
        (lambda h, p: (h, p + b"abc"), "is damaged: its payload has 3 bytes that belong to no tensor"),
        (lambda h, p: _edit_weight(h, p, encoding="zip"), "tensor 'fc1.weight' has encoding 'zip'; a sparse file uses"),
        (lambda h, p: _edit_weight(h, p, shape=[300, -64]), "tensor 'fc1.weight' has shape [300, -64], not a list"),
        (lambda h, p: _edit_weight(h, p, shape=[10, 64]), "is damaged: tensor 'fc1.weight' has "),
        (lambda h, p: _edit_weight(h, p, stored_dtype="complex64"), "tensor 'fc1.weight' has dtype 'complex64'"),
        (lambda h, p: _edit_weight(h, p, buffers=[["lzma", 10**9, 5]]), "tensor 'fc1.weight' has 1 buffers where 2"),
        (lambda h, p: _edit_weight(h, p, shape=None, drop="shape"), "tensor 'fc1.weight' lacks 'shape'"),
    ],
    ids=["no tensors", "extra payload", "unknown encoding", "negative size", "other shape", "dtype", "buffers", "key"],
)
def test_a_checksummed_file_that_makes_no_sense_is_refused_in_one_line(saved, edit, why):
    _repack(saved, edit)
    message = one_line_error(wb.load_sparse, saved)
    assert message.startswith(f"{saved} ") and why in message, message


def _edit_weight(header: dict, payload: bytes, drop: str | None = None, **changes) -> tuple[dict, bytes]:
    """``header`` with the entry of fc1.weight changed (``drop``: a key removed)."""
    tensors = [
        {key: value for key, value in {**entry, **changes}.items() if key != drop}
        if entry["name"] == "fc1.weight"
        else entry
        for entry in header["tensors"]
    ]
    return {**header, "tensors": tensors}, payload


def test_a_failed_save_leaves_no_partial_file(shipped, tmp_path, monkeypatch):
    model = shipped("mlp")
    wb.prune(model, sparsity=0.5)
    path = tmp_path / "model.sparse"
    path.write_bytes(b"the previous file")

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage_format.os, "replace", disk_full)
    assert one_line_error(wb.save_sparse, model, path) == f"{path} cannot be written: no space left on device"
    assert path.read_bytes() == b"the previous file" and list(tmp_path.iterdir()) == [path]


def test_a_refused_save_writes_nothing(shipped, tmp_path):
    model = shipped("mlp")
    wb.prune(model, sparsity=0.5)
    with torch.no_grad():
        model.fc1.bias[0] = 1e6  # beyond float16
    path = tmp_path / "model.sparse"
    assert "has values beyond float16's range" in one_line_error(wb.save_sparse, model, path, values="fp16")
    assert "encoding 'nm' does not fit 'fc1.weight'" in one_line_error(wb.save_sparse, model, path, encoding="nm")
    assert "encoding must be 'auto' or one of dense" in one_line_error(wb.save_sparse, model, path, encoding="csr")
    assert "values must be 'exact'" in one_line_error(wb.save_sparse, model, path, values="fp8")
    assert one_line_error(wb.save_sparse, model, tmp_path).startswith(f"{tmp_path} is a folder")
    assert one_line_error(wb.save_sparse, model, tmp_path / "no" / "m.sparse").endswith(
        "create that folder first, or save elsewhere"
    )
    assert list(tmp_path.iterdir()) == []


def test_fp16_values_are_marked_lossy_and_within_fp16_rounding(shipped, tmp_path):
    model = shipped("mlp")
    wb.prune(model, sparsity=0.9)
    exact = wb.save_sparse(model, tmp_path / "exact.sparse")
    half = wb.save_sparse(model, tmp_path / "half.sparse", values="fp16")
    assert half < 0.6 * exact
    assert read_sparse(tmp_path / "half.sparse").lossy and not read_sparse(tmp_path / "exact.sparse").lossy
    with pytest.warns(UserWarning, match="holds float16 values"):
        again = wb.load_sparse(tmp_path / "half.sparse")
    assert get_masks(again).keys() == get_masks(model).keys()
    assert all(torch.equal(get_masks(again)[name], mask) for name, mask in get_masks(model).items())
    state, state_again = plain_state_dict(model), plain_state_dict(again)
    for name, value in state.items():
        torch.testing.assert_close(state_again[name], value, rtol=2**-11, atol=6e-8)  # half an fp16 ulp


def test_a_users_model_loads_into_a_copy_of_its_template(tmp_path):
    def build():
        return nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))

    model = build()
    wb.prune(model, sparsity=0.5)
    path = tmp_path / "users.sparse"
    wb.save_sparse(model, path)
    assert "holds a user's model: pass template=" in one_line_error(wb.load_sparse, path)
    template = build()
    wb.prune(template, sparsity=0.75)  # a masked template is fine: its copy is unmasked first
    before = state_copy(template)
    assert_round_trip(model, wb.load_sparse(path, template=template))
    assert_same_state(state_copy(template), before)
    message = one_line_error(wb.load_sparse, path, template=nn.Linear(8, 4))
    assert message.startswith(f"{path} does not fit the template Linear: the file lacks"), message


def test_a_shrunk_then_pruned_model_round_trips(shipped, tmp_path):
    small = wb.shrink(shipped("transformer"), sparsity=0.5, pattern="head")
    wb.prune(small, sparsity=0.7)
    wb.save_sparse(small, tmp_path / "small.sparse")
    again = wb.load_sparse(tmp_path / "small.sparse")
    assert_round_trip(small, again)
    assert again.blocks[0].attn.num_heads == 2
    inputs = default_inputs(small, 3)
    assert torch.equal(again(*inputs), small.eval()(*inputs))


def test_a_baked_model_stores_its_zeros_sparse_and_loads_unmasked(shipped, tmp_path):
    model = shipped("mlp")
    dense = dense_file_bytes(model)
    wb.prune(model, sparsity=0.9)
    bake(model)  # pruned weights become ±0.0 (a negative original times 0 is -0.0): -0.0 is kept as a value
    with torch.no_grad():
        for parameter in model.parameters():
            parameter += 0.0  # -0.0 + 0.0 = +0.0
    size = wb.save_sparse(model, tmp_path / "baked.sparse")
    again = wb.load_sparse(tmp_path / "baked.sparse")
    assert size < 0.13 * dense and not get_masks(again)
    assert_same_state(state_copy(again), state_copy(model))


def test_report_splits_add_up_and_the_sparse_file_is_what_save_writes(shipped, tmp_path):
    model = shipped("cnn")
    dense = dense_file_bytes(model)
    prune_shipped(model, "cnn", "2:4", None)
    report = wb.storage_report(model)
    for name, sizes in report.files.items():
        assert sum(sizes[part] for part in PARTS) == sizes["total"] and min(sizes.values()) >= 0, name
    assert report.files["sparse auto"]["total"] == wb.save_sparse(model, tmp_path / "model.sparse")
    assert report.files["torch.save dense"]["total"] == dense
    assert 1.2 < report.ratio("torch.save masked") < 1.3  # bool masks: one byte beside each 4-byte original
    assert report.best in ("auto", "nm") and report.ratio("sparse nm") < report.ratio("sparse bitmask")
    assert {row["encoding"] for row in report.tensors if row["name"].startswith("block")} >= {"nm", "dense"}
    assert "sparse nm" in str(report) and "of dense" in str(report).splitlines()[0]


def test_entropy_bound_is_kept_values_at_full_width_plus_the_masks_binary_entropy():
    layer = nn.Linear(4, 2, bias=False)
    apply_masks(layer, {"weight": torch.tensor([[True, False, False, False], [False, False, True, False]])})
    bound = wb.storage_report(layer).files[BOUND]
    assert (bound["values"], bound["indices"], bound["metadata"]) == (8, round(8 * binary_entropy(0.25) / 8), 0)


def test_unstructured_masks_do_not_fit_nm_and_the_report_says_why(shipped):
    model = shipped("mlp")
    wb.prune(model, sparsity=0.9)
    report = wb.storage_report(model)
    assert report.files["sparse nm"] is None and "does not fit 'fc1.weight'" in report.notes["sparse nm"]
    figure = plot_storage(report)
    ax = figure.axes[0]
    assert len(ax.patches) == 3 * (len(report.files) - 1)  # values, indices, metadata per file but the bound
    assert "does not fit" in [text.get_text() for text in ax.texts]
    (bound_line,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert bound_line.get_ydata()[0] == pytest.approx(100 * report.ratio(BOUND))
    assert [text.get_text() for text in ax.get_legend().get_texts()][1:] == list(PARTS)


def test_a_saved_file_gets_an_ordinary_files_permissions(shipped, tmp_path):
    previous = os.umask(0o027)
    try:
        wb.save_sparse(shipped("mlp"), tmp_path / "model.sparse")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "model.sparse").stat().st_mode) == 0o640  # 0666 less the umask, not 0600

"""Model zoo: shipped checkpoints (accuracy, metadata, safe loading), error paths, augmentation, regeneration."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from helpers import ACCURACY_FLOORS, MNIST1D_FLOORS, SHIPPED, assert_same_state, retry_load, state_copy
from hypothesis import given
from hypothesis import strategies as st

import workbench as wb
from workbench.models import MODELS, build_model, config_from_dict, count_parameters
from workbench.zoo import RECIPES, checkpoint_dir, shift_augment, train_checkpoint


@pytest.fixture
def folder(tmp_path) -> Path:
    """A private copy of the shipped checkpoint folder, free to damage."""
    target = tmp_path / "checkpoints"
    retry_load(lambda: _copy_consistent(target))
    return target


def _copy_consistent(target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(checkpoint_dir(), target)
    for name in SHIPPED:  # raise ValueError (and so retry) if a file was copied mid-write
        wb.pretrained(name, directory=target)


# ---------------------------------------------------------------- shipped checkpoints


@pytest.mark.parametrize("name", SHIPPED)
def test_pretrained_is_on_cpu_in_eval_mode(shipped, name):
    model = shipped(name)
    assert not model.training
    assert not any(m.training for m in model.modules())
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(b.device.type == "cpu" for b in model.buffers())


@pytest.mark.parametrize("name", sorted(ACCURACY_FLOORS))
def test_accuracy_floor(shipped, digits, name):
    assert wb.evaluate(shipped(name), digits.test) >= ACCURACY_FLOORS[name]


@pytest.mark.parametrize("name", sorted(MNIST1D_FLOORS))
def test_mnist1d_checkpoints_reach_the_published_baselines(shipped, name):
    assert wb.evaluate(shipped(name), wb.load_dataset("mnist1d").test) >= MNIST1D_FLOORS[name]


@pytest.mark.parametrize("name", SHIPPED)
def test_metadata_matches_model(shipped, name):
    model = shipped(name)
    info = retry_load(lambda: wb.checkpoint_info(name))
    data = wb.load_dataset(info["dataset"], seed=info["recipe"]["seed"])
    assert info["model"] == name and info["dataset"] == MODELS[name].dataset
    assert config_from_dict(name, info["config"]) == model.config
    assert info["parameters"] == count_parameters(model)
    assert info["recipe"] == asdict(RECIPES[name]), "shipped checkpoint was not trained with the current recipe"
    assert abs(info["test_accuracy"] - wb.evaluate(model, data.test)) <= 1e-6
    if info["val_accuracy"] is not None:
        assert abs(info["val_accuracy"] - wb.evaluate(model, data.val)) <= 1e-6


@pytest.mark.parametrize("name", SHIPPED)
def test_checkpoint_file_is_small_plain_state_dict(shipped, name):
    path = checkpoint_dir() / f"{name}.pt"
    assert path.stat().st_size <= 2 * 1024 * 1024
    state = retry_load(lambda: _load_weights_only(path))
    assert isinstance(state, dict)  # a plain (Ordered)dict, nothing else was pickled
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    model = shipped(name)
    assert state.keys() == model.state_dict().keys()
    assert_same_state(dict(state), state_copy(model))


def _load_weights_only(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # mid-write: let retry_load try again
        raise ValueError(str(error)) from error


def test_pretrained_returns_independent_models():
    a, b = wb.pretrained("mlp2d"), wb.pretrained("mlp2d")
    with torch.no_grad():
        a.fc1.weight.zero_()
    assert b.fc1.weight.abs().sum() > 0


# ---------------------------------------------------------------- error paths


def _expect_error_naming(path: Path, call) -> str:
    with pytest.raises(ValueError) as info:
        call()
    assert str(path) in str(info.value), f"message does not name {path}: {info.value}"
    return str(info.value)


def test_missing_pt(folder):
    (folder / "mlp.pt").unlink()
    message = _expect_error_naming(folder / "mlp.pt", lambda: wb.pretrained("mlp", directory=folder))
    assert "missing" in message


def test_missing_json(folder):
    (folder / "cnn.json").unlink()
    _expect_error_naming(folder / "cnn.json", lambda: wb.pretrained("cnn", directory=folder))
    _expect_error_naming(folder / "cnn.json", lambda: wb.checkpoint_info("cnn", directory=folder))


@pytest.mark.parametrize("garbage", [b"", b"not a checkpoint", os.urandom(256), b"PK\x03\x04broken zip"])
def test_corrupt_pt(folder, garbage):
    (folder / "mlp.pt").write_bytes(garbage)
    _expect_error_naming(folder / "mlp.pt", lambda: wb.pretrained("mlp", directory=folder))
    # the damaged copy does not affect the shipped checkpoint
    assert wb.evaluate(wb.pretrained("mlp2d"), wb.load_dataset("spirals").test) > 0.9


def test_truncated_pt(folder):
    path = folder / "transformer.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _expect_error_naming(path, lambda: wb.pretrained("transformer", directory=folder))


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def test_pickle_payload_is_refused_not_run(folder, tmp_path):
    marker = tmp_path / "payload-ran"
    torch.save({"fc1.weight": _Payload(marker)}, folder / "mlp.pt")
    _expect_error_naming(folder / "mlp.pt", lambda: wb.pretrained("mlp", directory=folder))
    assert not marker.exists(), "loading a checkpoint executed code"


def test_wrong_shapes(folder):
    torch.save(build_model("mlp", hidden=(32, 16)).state_dict(), folder / "mlp.pt")
    message = _expect_error_naming(folder / "mlp.pt", lambda: wb.pretrained("mlp", directory=folder))
    assert "does not fit" in message and "size mismatch" in message


def test_missing_and_unexpected_keys(folder):
    state = torch.load(folder / "cnn.pt", weights_only=True)
    del state["fc.bias"]
    torch.save(state, folder / "cnn.pt")
    _expect_error_naming(folder / "cnn.pt", lambda: wb.pretrained("cnn", directory=folder))
    state = torch.load(checkpoint_dir() / "mlp2d.pt", weights_only=True)
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, folder / "mlp2d.pt")
    _expect_error_naming(folder / "mlp2d.pt", lambda: wb.pretrained("mlp2d", directory=folder))


def test_pt_holding_a_tensor(folder):
    torch.save(torch.zeros(3), folder / "mlp2d.pt")
    message = _expect_error_naming(folder / "mlp2d.pt", lambda: wb.pretrained("mlp2d", directory=folder))
    assert "state_dict" in message


@pytest.mark.parametrize("text", ["{not json", "", '{"config": {"hidden": [1, 2]', "\x00\x01"])
def test_invalid_json(folder, text):
    (folder / "mlp.json").write_text(text)
    message = _expect_error_naming(folder / "mlp.json", lambda: wb.pretrained("mlp", directory=folder))
    assert "JSON" in message


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        "[]",
        '{"config": null}',
        '{"config": {"bogus": 1}}',
    ],
)
def test_valid_json_with_bad_metadata(folder, text):
    """Valid JSON that is not checkpoint metadata: documented as a ValueError naming the file."""
    (folder / "mlp.json").write_text(text)
    _expect_error_naming(folder / "mlp.json", lambda: wb.pretrained("mlp", directory=folder))


@pytest.mark.parametrize("name", ["resnet", "MLP", ""])
def test_unknown_model_name(folder, name):
    for call in (
        lambda: wb.pretrained(name),
        lambda: wb.pretrained(name, directory=folder),
        lambda: wb.checkpoint_info(name),
    ):
        with pytest.raises(ValueError) as info:
            call()
        for choice in MODELS:
            assert choice in str(info.value)


def test_error_leaves_files_unchanged(folder):
    (folder / "mlp.pt").write_bytes(b"junk")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ValueError):
        wb.pretrained("mlp", directory=folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert wb.pretrained("cnn", directory=folder).fc.out_features == 10  # the rest of the folder still loads


# ---------------------------------------------------------------- shift_augment


def shift(images: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """Content moved down by dy and right by dx; uncovered pixels set to ``fill``."""
    out = torch.full_like(images, fill)
    height, width = images.shape[-2:]
    for i in range(height):
        for j in range(width):
            if 0 <= i - dy < height and 0 <= j - dx < width:
                out[..., i, j] = images[..., i - dy, j - dx]
    return out


@given(max_shift=st.integers(0, 3), batch=st.integers(1, 12), channels=st.integers(1, 2), seed=st.integers(0, 1000))
def test_shift_augment_is_a_translation_with_background_padding(max_shift, batch, channels, seed):
    images = torch.rand(batch, channels, 8, 8, generator=torch.Generator().manual_seed(seed)) + 1.0
    images[0, 0, 0, 0] = 0.5  # the batch minimum = the background
    out = shift_augment(max_shift)(images.clone(), torch.Generator().manual_seed(seed))
    assert out.shape == images.shape and out.dtype == images.dtype
    for index in range(batch):
        candidates = [
            (dy, dx)
            for dy in range(-max_shift, max_shift + 1)
            for dx in range(-max_shift, max_shift + 1)
            if torch.equal(out[index], shift(images[index], dy, dx, 0.5))
        ]
        assert candidates, f"sample {index} is not a translation by at most {max_shift} with background padding"


@given(max_shift=st.integers(1, 3), seed=st.integers(0, 1000))
def test_bright_pixel_moves_at_most_max_shift(max_shift, seed):
    images = torch.zeros(16, 1, 8, 8)
    images[:, 0, 4, 4] = 1.0
    out = shift_augment(max_shift)(images, torch.Generator().manual_seed(seed))
    for sample in out:
        bright = (sample[0] == 1.0).nonzero()
        assert len(bright) == 1 and (sample != 0).sum() == 1
        row, col = bright[0].tolist()
        assert abs(row - 4) <= max_shift and abs(col - 4) <= max_shift


def test_shift_augment_uses_every_offset_and_the_generator():
    images = torch.zeros(400, 1, 8, 8)
    images[:, 0, 4, 4] = 1.0
    augment = shift_augment(1)
    out = augment(images, torch.Generator().manual_seed(0))
    positions = {tuple(s[0].nonzero()[0].tolist()) for s in out}
    assert positions == {(r, c) for r in (3, 4, 5) for c in (3, 4, 5)}
    assert torch.equal(out, augment(images, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, augment(images, torch.Generator().manual_seed(1)))
    assert torch.equal(shift_augment(0)(images, torch.Generator()), images)


@given(max_shift=st.integers(0, 4), seed=st.integers(0, 1000))
def test_signals_shift_along_time_with_their_edge_values(max_shift, seed):
    signals = torch.randn(8, 1, 40, generator=torch.Generator().manual_seed(seed))
    out = shift_augment(max_shift)(signals, torch.Generator().manual_seed(seed))
    padded = torch.nn.functional.pad(signals, (max_shift, max_shift), mode="replicate")
    for index in range(len(signals)):
        assert any(torch.equal(out[index], padded[index, :, k : k + 40]) for k in range(2 * max_shift + 1))


def test_shift_augment_pads_digits_with_their_background(digits):
    images = digits.train.tensors[0][:64]
    background = (0.0 - digits.mean) / digits.std
    out = shift_augment(2)(images, torch.Generator().manual_seed(0))
    raw = out.double() * digits.std + digits.mean
    assert raw.min().item() == pytest.approx(0.0, abs=1e-6) and raw.max().item() <= 1 + 1e-5
    assert ((raw * 16 - (raw * 16).round()).abs() < 1e-4).all()
    assert images.min().item() == pytest.approx(background, abs=1e-6)


# ---------------------------------------------------------------- regeneration


def test_train_checkpoint_writes_loadable_files(tmp_path):
    shipped_pt = checkpoint_dir() / "mlp2d.pt"
    shipped_mtime = shipped_pt.stat().st_mtime_ns
    meta = train_checkpoint("mlp2d", tmp_path / "a", progress=False, epochs=1)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["mlp2d.json", "mlp2d.pt"]
    assert json.loads((tmp_path / "a" / "mlp2d.json").read_text()) == json.loads(json.dumps(meta))
    assert meta["recipe"] == {**asdict(RECIPES["mlp2d"]), "epochs": 1}
    assert meta["model"] == "mlp2d" and meta["dataset"] == "spirals"
    model = wb.pretrained("mlp2d", directory=tmp_path / "a")
    data = wb.load_dataset("spirals")
    assert meta["test_accuracy"] == wb.evaluate(model, data.test)
    assert meta["val_accuracy"] == wb.evaluate(model, data.val)
    assert meta["parameters"] == count_parameters(model)
    assert shipped_pt.stat().st_mtime_ns == shipped_mtime, "the shipped checkpoint was touched"
    # Same seed, same machine: the same weights, bit for bit.
    again = train_checkpoint("mlp2d", tmp_path / "b", progress=False, epochs=1)
    assert_same_state(
        torch.load(tmp_path / "a" / "mlp2d.pt", weights_only=True),
        torch.load(tmp_path / "b" / "mlp2d.pt", weights_only=True),
    )
    assert again == meta


def test_train_checkpoint_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        train_checkpoint("resnet", tmp_path, progress=False, epochs=1)
    assert not any(tmp_path.iterdir())

"""Datasets: split sizes, partition of the raw data, stratification, seeding, dtypes, standardization."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

import workbench as wb
from workbench.data import SPLIT_FRACTIONS

SPLITS = ("train", "val", "test")
seeds = st.integers(min_value=0, max_value=2**16)
sizes = st.integers(min_value=30, max_value=400)
synthetic = st.sampled_from(["moons", "spirals"])


def rows(split: TensorDataset) -> Counter:
    """Multiset of (input bytes, label) rows of a split."""
    inputs, labels = split.tensors
    return Counter((x.numpy().tobytes(), int(y)) for x, y in zip(inputs.reshape(len(inputs), -1), labels))


def raw_digit_rows(data: wb.DatasetSplits, split: TensorDataset) -> Counter:
    """Multiset of (integer pixels 0..16, label) rows, recovered from standardized inputs."""
    inputs, labels = split.tensors
    pixels = torch.round((inputs.double() * data.std + data.mean) * 16).to(torch.int64)
    return Counter((tuple(p.flatten().tolist()), int(y)) for p, y in zip(pixels, labels))


def generated(name: str, n_samples: int, seed: int):
    """The points load_dataset must have split, from the documented generators."""
    if name == "moons":
        from sklearn.datasets import make_moons

        points, labels = make_moons(n_samples=n_samples, noise=0.2, random_state=seed)
        return points.astype(np.float32), labels.astype(np.int64)
    from workbench.data import _spirals

    points, labels, _ = _spirals(n_samples, None, seed)
    return points, labels


def check_stratified(data: wb.DatasetSplits) -> None:
    """Each split's class counts are within 2 of the overall proportion times the split size."""
    all_labels = torch.cat([getattr(data, s).tensors[1] for s in SPLITS])
    overall = torch.bincount(all_labels, minlength=data.num_classes).double() / len(all_labels)
    for split in SPLITS:
        labels = getattr(data, split).tensors[1]
        counts = torch.bincount(labels, minlength=data.num_classes).double()
        deviation = (counts - overall * len(labels)).abs().max().item()
        assert deviation <= 2.0, f"{data.name}/{split}: class counts {counts.tolist()} off by {deviation}"


# ---------------------------------------------------------------- digits


def test_digits_split_sizes(digits):
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1257, 180, 360)
    assert sum(SPLIT_FRACTIONS) == pytest.approx(1.0)


def test_digits_splits_partition_the_raw_dataset(digits):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    raw = Counter((tuple(int(v) for v in image.flatten()), int(t)) for image, t in zip(bunch.images, bunch.target))
    per_split = [raw_digit_rows(digits, getattr(digits, s)) for s in SPLITS]
    # The raw set has no duplicate rows, so disjoint splits must have no row in common ...
    assert max(raw.values()) == 1
    for i in range(3):
        for j in range(i + 1, 3):
            assert not (per_split[i].keys() & per_split[j].keys()), f"{SPLITS[i]} and {SPLITS[j]} share rows"
    # ... and together they are exactly the raw dataset.
    assert per_split[0] + per_split[1] + per_split[2] == raw


def test_digits_standardized_with_train_statistics(digits):
    x = digits.train.tensors[0].double()
    assert abs(x.mean().item()) < 1e-5
    assert x.std(correction=0).item() == pytest.approx(1.0, abs=1e-5)
    assert digits.std > 0 and 0 < digits.mean < 1
    for split in SPLITS:
        raw = getattr(digits, split).tensors[0].double() * digits.std + digits.mean
        assert raw.min().item() >= -1e-5 and raw.max().item() <= 1 + 1e-5
        sixteenths = raw * 16
        assert (sixteenths - sixteenths.round()).abs().max().item() < 1e-4, f"{split}: raw pixels are not k/16"


def test_digits_metadata(digits):
    assert digits.name == "digits"
    assert digits.classes == tuple(str(i) for i in range(10))
    assert digits.num_classes == 10
    assert digits.input_shape == (1, 8, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        digits.mean = 0.0


def test_digits_ignores_n_samples_and_noise(digits):
    other = wb.load_dataset("digits", n_samples=31, noise=3.0)
    for split in SPLITS:
        for a, b in zip(getattr(digits, split).tensors, getattr(other, split).tensors):
            assert torch.equal(a, b)


def test_digits_seed_changes_split_not_content(digits):
    other = wb.load_dataset("digits", seed=1)
    assert not torch.equal(digits.test.tensors[0], other.test.tensors[0])
    total = lambda d: sum((raw_digit_rows(d, getattr(d, s)) for s in SPLITS), Counter())  # noqa: E731
    assert total(digits) == total(other)
    check_stratified(other)


# ---------------------------------------------------------------- every dataset


@pytest.mark.parametrize("name", wb.DATASETS)
def test_dtypes_shapes_and_labels(name):
    data = wb.load_dataset(name)
    for split in SPLITS:
        inputs, labels = getattr(data, split).tensors
        assert inputs.dtype == torch.float32
        assert labels.dtype == torch.int64
        assert tuple(inputs.shape[1:]) == data.input_shape
        assert labels.shape == (len(inputs),)
        assert torch.isfinite(inputs).all()
        assert set(labels.tolist()) == set(range(data.num_classes)), f"{split} lacks a class"
    assert data.num_classes == len(data.classes)


@pytest.mark.parametrize("name", wb.DATASETS)
def test_same_seed_same_tensors(name):
    a, b = wb.load_dataset(name, seed=3), wb.load_dataset(name, seed=3)
    for split in SPLITS:
        for ta, tb in zip(getattr(a, split).tensors, getattr(b, split).tensors):
            assert torch.equal(ta, tb)
    assert (a.mean, a.std) == (b.mean, b.std)


@pytest.mark.parametrize("name", [n for n in wb.DATASETS if n != "mnist1d"])  # its test split is the published one
def test_stratified(name):
    check_stratified(wb.load_dataset(name))


@pytest.mark.parametrize("name", wb.DATASETS)
def test_dataloader_compatible(name):
    data = wb.load_dataset(name)
    loader = DataLoader(data.train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    seen = 0
    for inputs, labels in loader:
        assert inputs.shape[1:] == data.input_shape and inputs.dtype == torch.float32
        assert labels.dtype == torch.int64 and len(labels) == len(inputs) <= 32
        seen += len(labels)
    assert seen == len(data.train)


# ---------------------------------------------------------------- 2-D sets


@given(name=synthetic, n_samples=sizes, seed=seeds)
def test_synthetic_splits_partition_the_generated_points(name, n_samples, seed):
    data = wb.load_dataset(name, seed=seed, n_samples=n_samples)
    n_train, n_val, n_test = (len(getattr(data, s)) for s in SPLITS)
    assert n_train + n_val + n_test == n_samples
    assert abs(n_test - SPLIT_FRACTIONS[2] * n_samples) <= 1
    assert abs(n_val - SPLIT_FRACTIONS[1] * n_samples) <= 1.5
    assert (data.mean, data.std) == (0.0, 1.0)  # 2-D sets are not standardized
    points, labels = generated(name, n_samples, seed)
    raw = rows(TensorDataset(torch.from_numpy(points), torch.from_numpy(labels)))
    per_split = [rows(getattr(data, s)) for s in SPLITS]
    assert per_split[0] + per_split[1] + per_split[2] == raw
    if max(raw.values()) == 1:
        assert not (per_split[0].keys() & per_split[1].keys())
        assert not (per_split[0].keys() & per_split[2].keys())
        assert not (per_split[1].keys() & per_split[2].keys())
    check_stratified(data)


@given(name=synthetic, seed=seeds)
def test_synthetic_different_seeds_differ(name, seed):
    a = wb.load_dataset(name, seed=seed, n_samples=100)
    b = wb.load_dataset(name, seed=seed + 1, n_samples=100)
    points = lambda d: torch.cat([getattr(d, s).tensors[0] for s in SPLITS])  # noqa: E731
    assert not torch.equal(points(a), points(b))
    # Not just a reshuffle: the point sets themselves differ.
    assert set(map(bytes, points(a).numpy())) != set(map(bytes, points(b).numpy()))


def test_synthetic_metadata():
    moons = wb.load_dataset("moons", seed=1)
    assert moons.input_shape == (2,) and moons.classes == ("upper", "lower")
    spirals = wb.load_dataset("spirals")
    assert spirals.input_shape == (2,) and spirals.num_classes == 3
    assert spirals.seed == 0 and moons.seed == 1


def test_noise_changes_points():
    quiet = wb.load_dataset("moons", noise=0.0, n_samples=200)
    x, y = (
        torch.cat([quiet.train.tensors[0], quiet.test.tensors[0]]),
        torch.cat([quiet.train.tensors[1], quiet.test.tensors[1]]),
    )
    # noise 0: exact half circles of radius 1 centred at (0, 0) and (1, 0.5)
    centres = torch.tensor([[0.0, 0.0], [1.0, 0.5]])
    assert torch.allclose((x - centres[y]).norm(dim=1), torch.ones(len(x)), atol=1e-5)
    noisy = wb.load_dataset("moons", noise=0.2, n_samples=200)
    assert not torch.equal(quiet.train.tensors[0], noisy.train.tensors[0])


def test_smallest_allowed_n_samples_has_every_class_in_every_split():
    for name in ("moons", "spirals"):
        data = wb.load_dataset(name, n_samples=30)
        for split in SPLITS:
            assert set(getattr(data, split).tensors[1].tolist()) == set(range(data.num_classes))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["mnist", "Digits", "", "moon"])
def test_unknown_name_lists_choices(name):
    with pytest.raises(ValueError) as info:
        wb.load_dataset(name)
    message = str(info.value)
    assert repr(name) in message
    for choice in wb.DATASETS:
        assert choice in message


@pytest.mark.parametrize("name", ["moons", "spirals"])
@pytest.mark.parametrize("n_samples", [29, 10, 0, -5])
def test_too_few_samples(name, n_samples):
    with pytest.raises(ValueError, match="n_samples must be at least 30"):
        wb.load_dataset(name, n_samples=n_samples)


# ---------------------------------------------------------------- MNIST-1D


def test_mnist1d_is_the_published_data_and_leaves_global_rngs_alone():
    import random

    import numpy as np
    from mnist1d.data import get_dataset_args, make_dataset

    random.seed(7)
    np.random.seed(7)
    expected_draws = (random.random(), np.random.rand())
    random.seed(7)
    np.random.seed(7)
    data = wb.load_dataset("mnist1d", seed=1)
    assert (random.random(), np.random.rand()) == expected_draws
    reference = make_dataset(get_dataset_args())  # the package's own generator, default seed
    assert np.array_equal(data.test.tensors[0][:, 0].numpy(), reference["x_test"].astype(np.float32))
    assert np.array_equal(data.test.tensors[1].numpy(), reference["y_test"])
    train_and_val = torch.cat([data.train.tensors[0], data.val.tensors[0]])[:, 0]
    assert sorted(map(tuple, train_and_val.tolist())) == sorted(map(tuple, reference["x"].astype(np.float32).tolist()))
    assert (len(data.train), len(data.val), len(data.test), data.input_shape) == (3600, 400, 1000, (1, 40))
    for split in (data.train, data.val):  # train and val are a stratified split of the published training set
        counts = torch.bincount(split.tensors[1], minlength=10).double()
        overall = torch.bincount(torch.cat([data.train.tensors[1], data.val.tensors[1]]), minlength=10) / 4000
        assert (counts - overall * len(split)).abs().max() <= 2


def test_mnist1d_seed_changes_the_validation_split_only():
    a, b = wb.load_dataset("mnist1d", seed=0), wb.load_dataset("mnist1d", seed=1)
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])
    assert not torch.equal(a.val.tensors[0], b.val.tensors[0])

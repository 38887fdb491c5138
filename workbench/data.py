"""Offline datasets as TensorDatasets: scikit-learn's 8×8 digits, MNIST-1D (generated from its seed), 2-D sets.

Example:
    >>> import workbench as wb
    >>> data = wb.load_dataset("digits")
    >>> len(data.train), len(data.val), len(data.test)
    (1257, 180, 360)
    >>> x, y = data.test[0]
    >>> tuple(x.shape), data.input_shape
    ((1, 8, 8), (1, 8, 8))
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

DATASETS = ("digits", "mnist1d", "moons", "spirals")

SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train / val / test, stratified


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset cut into fixed train/val/test splits that plain PyTorch code can use."""

    name: str  # registry name, e.g. "digits"
    train: TensorDataset  # (inputs float32, labels int64)
    val: TensorDataset
    test: TensorDataset
    classes: tuple[str, ...]  # class names, index = label
    input_shape: tuple[int, ...]  # shape of one input, e.g. (1, 8, 8)
    seed: int  # seed of the split (and of the generated points for 2-D sets)
    mean: float = 0.0  # inputs were standardized as (raw - mean) / std; raw = x * std + mean
    std: float = 1.0

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_dataset(
    name: str = "digits", seed: int = 0, n_samples: int = 1000, noise: float | None = None
) -> DatasetSplits:
    """Load an embedded dataset by name with a seeded, stratified train/val/test split.

    Args:
        name: one of ``DATASETS``: "digits" (sklearn's 8×8 handwritten digits, pixels
            standardized with the training split's mean and std), "mnist1d" (Greydanus & Kobak's 1-D digits,
            40 samples long, generated offline by ``mnist1d.data.make_dataset`` with its default seed: its
            1,000 test signals are the test split, its 4,000 training signals are split 3,600/400 into
            train/val by ``seed``), "moons" (two interleaving half circles) or "spirals" (three arms).
        seed: seed of the split and, for the 2-D sets, of the points themselves.
        n_samples: number of points of a 2-D set (ignored for digits).
        noise: standard deviation of the 2-D sets' Gaussian noise (default 0.2 for moons,
            0.25 for spirals; ignored for digits).

    Example:
        >>> moons = load_dataset("moons", seed=1)
        >>> moons.input_shape, moons.classes
        ((2,), ('upper', 'lower'))
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "digits":
        inputs, labels, classes = _digits()
    elif name == "mnist1d":
        return _mnist1d_splits(seed)
    else:
        if n_samples < 30:
            raise ValueError(f"n_samples must be at least 30 so every split has points of each class, got {n_samples}")
        inputs, labels, classes = _GENERATORS[name](n_samples, noise, seed)
    return _split(name, inputs, labels, classes, seed, standardize=name == "digits")


def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    inputs = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]  # raw pixels in [0, 1]
    return inputs, bunch.target.astype(np.int64), tuple(str(c) for c in bunch.target_names)


@functools.cache
def _mnist1d() -> dict[str, np.ndarray]:
    """MNIST-1D's default data (seed 42), generated once per process; the global RNGs are left as they were."""
    from mnist1d.data import get_dataset_args, make_dataset

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return {key: np.asarray(data[key]) for key in ("x", "y", "x_test", "y_test")}


def _mnist1d_splits(seed: int) -> DatasetSplits:
    from sklearn.model_selection import train_test_split

    data = _mnist1d()
    inputs, labels = data["x"].astype(np.float32)[:, None, :], data["y"].astype(np.int64)
    train, val = train_test_split(np.arange(len(labels)), test_size=0.1, stratify=labels, random_state=seed)

    def subset(x, y, rows=None):
        rows = np.arange(len(y)) if rows is None else np.sort(rows)
        return TensorDataset(torch.from_numpy(np.ascontiguousarray(x[rows])), torch.from_numpy(y[rows]))

    test_inputs = data["x_test"].astype(np.float32)[:, None, :]
    return DatasetSplits(
        name="mnist1d",
        train=subset(inputs, labels, train),
        val=subset(inputs, labels, val),
        test=subset(test_inputs, data["y_test"].astype(np.int64)),
        classes=tuple(str(digit) for digit in range(10)),
        input_shape=(1, inputs.shape[-1]),
        seed=seed,
    )


def _moons(n_samples: int, noise: float | None, seed: int):
    from sklearn.datasets import make_moons

    points, labels = make_moons(n_samples=n_samples, noise=0.2 if noise is None else noise, random_state=seed)
    return points.astype(np.float32), labels.astype(np.int64), ("upper", "lower")


def _spirals(n_samples: int, noise: float | None, seed: int, arms: int = 3):
    rng = np.random.default_rng(seed)
    noise = 0.25 if noise is None else noise
    labels = np.arange(n_samples) % arms
    radius = rng.uniform(0.05, 1.0, n_samples)
    angle = labels * (2 * math.pi / arms) + radius * 1.75 * math.pi + rng.normal(0.0, noise, n_samples) * radius
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return points.astype(np.float32), labels.astype(np.int64), tuple(f"arm {i}" for i in range(arms))


_GENERATORS = {"moons": _moons, "spirals": _spirals}


def _split(name, inputs, labels, classes, seed, standardize: bool) -> DatasetSplits:
    from sklearn.model_selection import train_test_split

    _, val_fraction, test_fraction = SPLIT_FRACTIONS
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=test_fraction, stratify=labels, random_state=seed)
    train, val = train_test_split(
        rest, test_size=val_fraction / (1 - test_fraction), stratify=labels[rest], random_state=seed
    )

    mean, std = (float(inputs[train].mean()), float(inputs[train].std())) if standardize else (0.0, 1.0)

    def subset(rows):
        rows = np.sort(rows)
        return TensorDataset(torch.from_numpy((inputs[rows] - mean) / std), torch.from_numpy(labels[rows]))

    return DatasetSplits(
        name=name,
        train=subset(train),
        val=subset(val),
        test=subset(test),
        classes=classes,
        input_shape=tuple(inputs.shape[1:]),
        seed=seed,
        mean=mean,
        std=std,
    )


def batches(data, batch_size: int = 128, max_batches: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, labels) batches from a DatasetSplits (its .train), a Dataset, a DataLoader or one tuple.

    Example:
        >>> inputs, labels = next(batches(load_dataset("digits"), batch_size=32))
        >>> tuple(inputs.shape), tuple(labels.shape)
        ((32, 1, 8, 8), (32,))
    """
    if data is None:
        raise ValueError("data is needed here: pass a DatasetSplits, Dataset, DataLoader or (inputs, labels)")
    if isinstance(data, DatasetSplits):
        data = data.train
    if isinstance(data, tuple):
        loader = [data]
    elif isinstance(data, DataLoader):
        loader = data
    elif isinstance(data, Dataset):
        loader = DataLoader(data, batch_size=batch_size)
    else:
        raise ValueError(
            f"data must be a DatasetSplits, Dataset, DataLoader or (inputs, labels) tuple, got {type(data).__name__}"
        )
    for index, batch in enumerate(loader):
        if max_batches is not None and index >= max_batches:
            return
        yield batch[0], batch[1]


def label_information(data: DatasetSplits) -> np.ndarray:
    """Mutual information (nats) between each input position and the label on the training split (scikit-learn's
    nearest-neighbour estimate, seeded): which pixels or time steps say something about the class.

    Example:
        >>> information = label_information(load_dataset("digits")).reshape(8, 8)
        >>> bool(information[:, 0].max() < 0.05 < 0.15 < information[2:6, 2:6].min())  # blank left column, centre
        True
    """
    from sklearn.feature_selection import mutual_info_classif

    inputs, labels = data.train.tensors
    return mutual_info_classif(inputs.reshape(len(inputs), -1).numpy(), labels.numpy(), random_state=0)

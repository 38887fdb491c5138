"""Gaussian knockoffs meet the knockoff condition numerically (swaps keep every second moment), match the inputs'
mean and covariance, and are seeded; non-knockoffs (a copy, a shuffled batch, X + noise) fail the check."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.knockoffs import (
    GaussianKnockoffs,
    check_knockoff_condition,
    gaussian_knockoffs,
    swap_features,
    swap_gap,
)


@functools.cache
def inputs_and_knockoffs(dataset: str, method: str = "maxent", repeats: int = 4):
    """Training inputs stacked ``repeats`` times (fresh knockoff noise per copy: a tighter moment estimate)."""
    inputs = wb.load_dataset(dataset).train.tensors[0]
    sampler = GaussianKnockoffs(method).fit(inputs)
    stacked = inputs.repeat(repeats, *[1] * (inputs.dim() - 1))
    return stacked, sampler.sample(stacked, seed=0)


@pytest.mark.parametrize("method", ["maxent", "equicorrelated"])
@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_knockoffs_meet_the_knockoff_condition(dataset, method):
    inputs, knockoffs = inputs_and_knockoffs(dataset, method)
    assert knockoffs.shape == inputs.shape and knockoffs.dtype == inputs.dtype
    check = check_knockoff_condition(inputs, knockoffs)
    assert check.gap < 0.03, check
    assert check.separation > 0.02, check  # not a copy of the inputs
    assert check.holds()


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_knockoffs_have_the_inputs_mean_and_covariance(dataset):
    inputs, knockoffs = inputs_and_knockoffs(dataset)
    x, x_tilde = inputs.flatten(1).double().numpy(), knockoffs.flatten(1).double().numpy()
    largest = x.var(0).max()
    assert np.abs(x_tilde.mean(0) - x.mean(0)).max() < 0.02 * np.sqrt(largest)
    assert np.abs(np.cov(x_tilde.T) - np.cov(x.T)).max() < 0.02 * largest


def test_constant_pixels_are_their_own_knockoffs():
    inputs, knockoffs = inputs_and_knockoffs("digits")
    constant = inputs.flatten(1).var(0) == 0
    assert constant.any(), "digits has blank pixels"
    assert torch.equal(knockoffs.flatten(1)[:, constant], inputs.flatten(1)[:, constant])


@functools.cache
def mnist1d_gap() -> float:
    return check_knockoff_condition(*inputs_and_knockoffs("mnist1d")).gap


@settings(max_examples=20, deadline=None)
@given(subset=st.sets(st.integers(0, 39), min_size=1, max_size=40))
def test_swapping_any_features_with_their_knockoffs_keeps_second_moments(subset):
    inputs, knockoffs = inputs_and_knockoffs("mnist1d")
    gap = mnist1d_gap()
    moved = swap_gap(inputs, knockoffs, sorted(subset))
    assert moved <= 2 * gap + 1e-9  # what the check promises for every swap
    assert moved < 0.03


def test_swap_features_exchanges_exactly_the_named_features():
    inputs, knockoffs = torch.arange(6.0).view(1, 1, 6), -torch.arange(6.0).view(1, 1, 6)
    x, x_tilde = swap_features(inputs, knockoffs, [1, 4])
    assert x.flatten().tolist() == [0, -1, 2, 3, -4, 5]
    assert x_tilde.flatten().tolist() == [0, 1, -2, -3, 4, -5]


def test_non_knockoffs_fail_the_check():
    inputs = wb.load_dataset("mnist1d").train.tensors[0]
    copy = check_knockoff_condition(inputs, inputs.clone())
    assert copy.gap == 0 and copy.separation == 0 and not copy.holds()  # exchangeable, but controls for nothing
    shuffled = inputs[torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))]
    assert check_knockoff_condition(inputs, shuffled).gap > 0.3  # a shuffled batch is independent of X
    assert swap_gap(inputs, shuffled, [10]) > 0.3  # one swap already moves a moment
    noisy = inputs + 0.5 * torch.randn(inputs.shape, generator=torch.Generator().manual_seed(0))
    assert check_knockoff_condition(inputs, noisy).gap > 0.1  # X + noise has a larger variance than X


def test_maxent_knockoffs_are_further_from_copies_than_equicorrelated_ones():
    maxent = check_knockoff_condition(*inputs_and_knockoffs("digits", "maxent"))
    equicorrelated = check_knockoff_condition(*inputs_and_knockoffs("digits", "equicorrelated"))
    assert maxent.separation > 1.2 * equicorrelated.separation


def test_knockoffs_are_seeded():
    inputs = wb.load_dataset("digits").train.tensors[0][:300]
    assert torch.equal(gaussian_knockoffs(inputs, seed=1), gaussian_knockoffs(inputs, seed=1))
    assert not torch.equal(gaussian_knockoffs(inputs, seed=1), gaussian_knockoffs(inputs, seed=2))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: GaussianKnockoffs("sdp"), "unknown knockoff method 'sdp'; choose one of maxent, equicorrelated"),
        (lambda x: GaussianKnockoffs(shrinkage=1), r"shrinkage must be a number in \[0, 1\)"),
        (lambda x: GaussianKnockoffs().sample(x), "fit the knockoffs first"),
        (lambda x: GaussianKnockoffs().fit(x).sample(x[:, :, :4]), "do not match the fitted"),
        (lambda x: GaussianKnockoffs().fit(x[:1]), "at least 2 samples"),
        (lambda x: check_knockoff_condition(x, x[:3]), "do not match inputs"),
    ],
)
def test_bad_knockoff_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(wb.load_dataset("digits").train.tensors[0][:200])

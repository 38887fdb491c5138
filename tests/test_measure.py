"""Measured latency (mode, device and threads handled; errors leave the model untouched) and the costs summary."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import workbench as wb
from workbench.measure import Costs, Latency, compare_latency, flops, latency, model_costs, parameter_counts

QUICK = 0.02  # seconds of timing: enough for a few runs, the numbers themselves are not checked


def small_net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert after[key].device == value.device and torch.equal(after[key], value), key


def test_latency_reports_positive_numbers_and_how_it_measured():
    result = latency(small_net(), torch.randn(5, 6), device="cpu", threads=1, min_run_time=QUICK)
    assert isinstance(result, Latency)
    assert result.median_ms > 0 and result.iqr_ms >= 0 and result.runs >= 1
    assert (result.threads, result.device, result.batch) == (1, "cpu", 5)
    text = str(result)
    assert "ms" in text and "1 thread" in text and "batch 5" in text and "cpu" in text


def test_threads_default_to_torch_setting():
    assert latency(small_net(), torch.randn(2, 6), device="cpu", min_run_time=QUICK).threads == torch.get_num_threads()


def test_timed_in_eval_mode_without_grad_and_mode_restored():
    model = small_net().train()
    model[1].eval()  # a mixed-mode model: every module's own mode must come back
    modes = [m.training for m in model.modules()]
    before = state(model)
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append((module.training, torch.is_grad_enabled())))
    latency(model, torch.randn(4, 6), device="cpu", threads=1, min_run_time=QUICK)
    assert seen and set(seen) == {(False, False)}
    assert [m.training for m in model.modules()] == modes
    assert_same_state(model, before)  # eval mode: BatchNorm running stats did not move


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu:0", ""])
def test_bad_device_is_a_value_error_and_model_untouched(device):
    model = small_net().train()
    before = state(model)
    with pytest.raises(ValueError, match="device"):
        latency(model, torch.randn(2, 6), device=device, min_run_time=QUICK)
    assert model.training
    assert_same_state(model, before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_value_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        latency(small_net(), torch.randn(2, 6), device="cuda", min_run_time=QUICK)


@pytest.mark.parametrize("inputs", [torch.randn(2, 7), torch.randn(6), (torch.randn(2, 6), torch.randn(2, 6))])
def test_inputs_that_do_not_fit_are_a_value_error_and_model_untouched(inputs):
    model = small_net().train()
    before = state(model)
    with pytest.raises(ValueError, match="do not fit"):
        latency(model, inputs, device="cpu", min_run_time=QUICK)
    assert all(m.training for m in model.modules())
    assert_same_state(model, before)


@pytest.mark.parametrize("inputs", [[1.0, 2.0], (), "x", None])
def test_inputs_that_are_not_tensors_are_a_value_error(inputs):
    with pytest.raises(ValueError, match="tensor"):
        latency(small_net(), inputs, device="cpu", min_run_time=QUICK)


@pytest.mark.parametrize(
    "options,match",
    [
        ({"threads": 0}, "threads"),
        ({"threads": 1.5}, "threads"),
        ({"min_run_time": 0}, "min_run_time"),
        ({"rounds": 0}, "rounds"),
    ],
)
def test_bad_timing_options_are_value_errors(options, match):
    with pytest.raises(ValueError, match=match):
        compare_latency({"net": small_net()}, torch.randn(2, 6), device="cpu", **options)


def test_compare_latency_times_every_model_interleaved():
    models = {"a": small_net(), "b": small_net(), "c": nn.Linear(6, 3)}
    order = []
    for name, model in models.items():
        model.register_forward_hook(lambda module, args, out, name=name: order.append(name))
    results = compare_latency(models, torch.randn(3, 6), device="cpu", threads=1, min_run_time=3 * QUICK, rounds=3)
    assert list(results) == list(models)
    for result in results.values():
        assert result.median_ms > 0 and result.runs >= 3 and (result.threads, result.batch) == (1, 3)
    switches = sum(a != b for a, b in itertools.pairwise(order))
    assert switches >= 3 * len(models) - 1  # every round visits every model (warm-up adds more)
    with pytest.raises(ValueError, match="at least one model"):
        compare_latency({}, torch.randn(3, 6), device="cpu")


def test_compare_latency_inputs_error_names_the_model():
    with pytest.raises(ValueError, match="tall"):
        compare_latency({"fits": nn.Linear(6, 3), "tall": nn.Linear(9, 3)}, torch.randn(2, 6), device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_latency_on_cuda_restores_devices():
    on_cpu, on_gpu = small_net(), small_net().cuda()
    results = compare_latency(
        {"cpu": on_cpu, "gpu": on_gpu}, torch.randn(4, 6), device="cuda", threads=1, min_run_time=QUICK
    )
    assert all(
        r.device == f"cuda:{torch.cuda.current_device()}" and r.median_ms > 0 and r.runs >= 1 for r in results.values()
    )
    assert all(p.device.type == "cpu" for p in on_cpu.parameters())
    assert all(p.device.type == "cuda" for p in on_gpu.parameters())


def test_model_costs_of_a_shrunk_model_are_smaller():
    dense = wb.pretrained("cnn")
    small = wb.shrink(dense, sparsity=0.5, pattern="filter")
    images = torch.randn(2, 1, 8, 8)
    big, little = model_costs(dense, images), model_costs(small, images)
    assert isinstance(big, Costs) and big.latency is None
    assert (big.params, big.nonzero) == parameter_counts(dense) and big.flops == flops(dense, images)
    assert little.params < big.params and little.flops < big.flops and little.nonzero <= little.params
    timed = model_costs(small, images, latency=True, device="cpu", threads=1, min_run_time=QUICK)
    assert timed.latency.median_ms > 0 and timed.latency.batch == 2
    assert timed.to_dict()["latency"]["threads"] == 1


def test_model_costs_counts_masked_weights_as_zero_but_flops_as_dense():
    model = wb.pretrained("mlp")
    inputs = torch.randn(1, 64)
    dense = model_costs(model, inputs)
    wb.prune(model, sparsity=0.5, pattern="unstructured")
    masked = model_costs(model, (inputs,))
    assert masked.params == dense.params and masked.flops == dense.flops
    assert masked.nonzero < dense.nonzero

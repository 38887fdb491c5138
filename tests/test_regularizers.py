"""Regularizers: penalties by hand, proximal steps that make exact zeros (and weight decay that makes none),
group lasso and network slimming emptying groups that a cut and ``wb.shrink`` then remove exactly."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_refused

import workbench as wb


def test_penalties_by_hand(shipped):
    model = shipped("cnn")
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    l1 = sum(m.weight.abs().sum() for m in convs)
    torch.testing.assert_close(wb.regularizers.l1(model, 0.5).penalty(model), l1)
    torch.testing.assert_close(wb.regularizers.l2(model).penalty(model), sum(m.weight.square().sum() for m in convs))
    filters = sum(m.weight.flatten(1).norm(dim=1).sum() for m in convs[:-1])  # the output layer keeps its classes
    torch.testing.assert_close(wb.regularizers.group_lasso(model, "filter").penalty(model), filters)
    columns = sum(m.weight.transpose(0, 1).flatten(1).norm(dim=1).sum() for m in convs)
    torch.testing.assert_close(wb.regularizers.group_lasso(model, "channel").penalty(model), columns)
    gammas = sum(m.weight.abs().sum() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    torch.testing.assert_close(wb.regularizers.bn_l1(model).penalty(model), gammas)
    hook = wb.regularizers.l1(model, 0.5)
    torch.testing.assert_close(hook(model, torch.tensor(1.0)), 1 + 0.5 * l1)


def test_head_groups_penalize_each_heads_rows_and_columns(shipped):
    model = shipped("transformer")
    attn = model.blocks[0].attn
    hook = wb.regularizers.group_lasso(model, "head")
    norms = hook.group_norms(model)["blocks.0.attn"]
    head0 = torch.cat(
        [
            attn.q.weight[:16].flatten(),
            attn.k.weight[:16].flatten(),
            attn.v.weight[:16].flatten(),
            attn.out.weight[:, :16].flatten(),
        ]
    )
    torch.testing.assert_close(norms[0], head0.norm().detach())


def train_with(model, digits, hook, proximal_lr=None, epochs=6):
    wb.train(
        model,
        digits,
        epochs=epochs,
        lr=3e-3,
        weight_decay=0.0,
        progress=False,
        loss_hook=hook,
        step_hook=hook.proximal(proximal_lr) if proximal_lr else None,
    )


def test_weight_decay_makes_no_zeros_and_the_l1_proximal_step_does(digits):
    l2_model, l1_model = wb.pretrained("mlp"), wb.pretrained("mlp")
    l2 = wb.regularizers.l2(l2_model, strength=1e-2)
    train_with(l2_model, digits, l2)
    assert int((l2_model.fc1.weight == 0).sum()) == 0, "an L2 penalty shrinks weights but makes no zeros"
    l1 = wb.regularizers.l1(l1_model, strength=1e-2)
    train_with(l1_model, digits, l1, proximal_lr=3e-3)
    assert (l1_model.fc1.weight == 0).float().mean() > 0.3, "soft thresholding makes exact zeros"


def test_group_lasso_empties_filters_that_cut_and_shrink_remove_exactly(digits):
    model = wb.pretrained("cnn")
    hook = wb.regularizers.group_lasso(model, "filter", strength=0.3)
    before = {name: (norms == 0).sum() for name, norms in hook.group_norms(model).items()}
    train_with(model, digits, hook, proximal_lr=3e-3, epochs=4)
    emptied = {name: int((norms == 0).sum()) for name, norms in hook.group_norms(model).items()}
    assert sum(emptied.values()) > sum(int(v) for v in before.values()) + 10
    result = hook.cut(model, threshold=0.0)
    assert result.pruned == sum(n * model.get_submodule(name).weight[0].numel() for name, n in emptied.items()), (
        "the cut masks exactly the emptied filters"
    )
    small = wb.shrink(model)
    x = digits.test.tensors[0][:64]
    torch.testing.assert_close(small(x), model.eval()(x), rtol=1e-4, atol=1e-5)
    assert wb.count_parameters(small) < wb.count_parameters(model)


def test_network_slimming_cut_masks_the_filters_of_small_gammas(shipped):
    model = shipped("cnn")
    with torch.no_grad():
        model.block1.bn1.weight[:5] = 0.0
    result = wb.regularizers.bn_l1(model).cut(model, threshold=1e-8)
    assert int((~result.masks["block1.conv1.weight"].flatten(1).all(1)).sum()) == 5
    assert int((~result.masks["block1.bn1.bias"]).sum()) == 5, "the channel's shift goes with it"
    small = wb.shrink(model)
    assert small.block1.conv1.out_channels == 27
    x = torch.randn(8, 1, 8, 8)
    torch.testing.assert_close(small(x), model.eval()(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda m: wb.regularizers.group_lasso(m, "kernel"), "Conv"),
        (lambda m: wb.regularizers.group_lasso(m, "4:8", exclude=["fc2"]), "fc3"),
        (lambda m: wb.regularizers.bn_l1(m), "BatchNorm"),
        (lambda m: wb.regularizers.l1(m, strength=-1), "strength"),
        (lambda m: wb.regularizers.group_lasso(m, "neuron", exclude=["fc7"]), "fc7"),
        (lambda m: wb.regularizers.l1(m).proximal(lr="fast"), "strength"),
    ],
)
def test_bad_regularizers_are_refused_and_change_nothing(make, message):
    model = wb.pretrained("mlp")
    assert_refused(model, make, message)


def test_cut_to_a_sparsity(shipped):
    model = shipped("mlp")
    hook = wb.regularizers.group_lasso(model, "neuron")
    result = hook.cut(model, sparsity=0.25)
    rows = sum(int((~m.any(1)).sum()) for m in result.masks.values())
    assert rows == round(0.25 * 400), "a quarter of fc1's and fc2's 400 neurons, the weakest first"
    with pytest.raises(ValueError, match="threshold or a sparsity"):
        hook.cut(model)

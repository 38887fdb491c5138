"""Structured shrinking: the shrunk model is smaller, plain PyTorch, and computes what the masked one did."""

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import workbench as wb
from workbench.masks import apply_masks, is_masked
from workbench.models import count_parameters
from workbench.structure.graph import trace_groups
from workbench.structure.shrink import shrink_masked


@pytest.fixture(scope="module")
def digits():
    return wb.load_dataset("digits").test.tensors[0]


def _inputs(name, x):
    return x.flatten(1) if name == "mlp" else x


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_equivalent(masked, small, x, rtol=1e-5):
    with torch.no_grad():
        expected, got = masked(x), small(x)
    assert got.shape == expected.shape
    scale = expected.abs().max().clamp_min(1e-12)
    assert ((got - expected).abs().max() / scale).item() <= rtol


def _assert_plain(small):
    assert not is_masked(small)
    assert not any("parametrizations" in k for k in small.state_dict())
    buffer = io.BytesIO()
    torch.save(small.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    twin = copy.deepcopy(small)
    for p in twin.parameters():
        p.data.zero_()
    twin.load_state_dict(loaded)
    for (k, a), b in zip(small.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), k


CASES = [("mlp", "neuron"), ("cnn", "filter"), ("transformer", "head"), ("transformer", "neuron")]


@pytest.mark.parametrize("name,pattern", CASES)
@pytest.mark.parametrize("scope", ["global", "local"])
@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.7])
def test_shrink_matches_masked_model(digits, name, pattern, scope, sparsity):
    model = wb.pretrained(name)
    wb.prune(model, sparsity=sparsity, pattern=pattern, scope=scope, criterion="magnitude")
    x = _inputs(name, digits)
    before = _state(model)
    with torch.no_grad():
        reference = model(x)
    small, report = shrink_masked(model, example_inputs=x[:8])
    _assert_equivalent(model, small, x)
    assert count_parameters(small) < count_parameters(wb.pretrained(name)) == report.params_before
    assert report.params_after == count_parameters(small)
    _assert_plain(small)
    # the original is untouched, bit for bit, and still masked and working
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert is_masked(model)
    with torch.no_grad():
        assert torch.equal(model(x), reference)
    assert report.layers and all(" → " in line for line in report.lines())


@pytest.mark.parametrize("name,pattern", CASES)
def test_shrink_twice(digits, name, pattern):
    x = _inputs(name, digits)
    model = wb.pretrained(name)
    wb.prune(model, sparsity=0.3, pattern=pattern, scope="local")
    small, _ = shrink_masked(model, example_inputs=x[:8])
    wb.prune(small, sparsity=0.3, pattern=pattern, scope="local")
    smaller, _report = shrink_masked(small, example_inputs=x[:8])
    _assert_equivalent(small, smaller, x)
    assert count_parameters(smaller) < count_parameters(small)
    _assert_plain(smaller)


def test_report_shapes_and_heads(digits):
    model = wb.pretrained("mlp")
    wb.prune(model, sparsity=0.5, pattern="neuron", scope="local")
    _, report = shrink_masked(model, example_inputs=digits.flatten(1)[:4])
    assert "fc1: 300×64 → 150×64" in report.lines()
    assert "fc2: 100×300 → 50×150" in report.lines()
    vit = wb.pretrained("transformer")
    wb.prune(vit, sparsity=0.5, pattern="head", scope="local")
    _, report = shrink_masked(vit, example_inputs=digits[:4])
    assert "blocks.0.attn: 4 heads → 2 heads" in report.lines()


def test_groups_of_shipped_models():
    cnn = wb.build_model("cnn").eval()
    groups = trace_groups(cnn, torch.randn(2, 1, 8, 8)).groups
    residual = next(g for g in groups if any(m.param == "stem.0.weight" for m in g.producers))
    assert {m.param for m in residual.producers} == {"stem.0.weight", "block1.conv2.weight"}
    assert residual.prunable and residual.size == 32
    assert not groups[-1].prunable and "output" in groups[-1].reasons[0]
    vit = wb.build_model("transformer").eval()
    groups = trace_groups(vit, torch.randn(2, 1, 8, 8)).groups
    heads = [g for g in groups if g.kind == "head"]
    assert [g.attention for g in heads] == ["blocks.0.attn", "blocks.1.attn"] and all(g.size == 4 for g in heads)
    stream = next(g for g in groups if any(m.param == "pos_embed" for m in g.members))
    assert not stream.prunable and "layer_norm" in stream.reasons[0]  # LayerNorm statistics pin the width


def test_keep_dict_and_keep_multiple(digits):
    x = digits.flatten(1)
    model = wb.pretrained("mlp")
    small, _report = shrink_masked(model, {0: torch.arange(0, 300, 2)}, example_inputs=x[:4])
    assert small.fc1.out_features == 150 and small.fc2.in_features == 150
    model = wb.pretrained("mlp")
    wb.prune(model, sparsity=0.5, pattern="neuron", scope="local")
    small, _ = shrink_masked(model, example_inputs=x[:4], keep_multiple=16)
    assert small.fc1.out_features % 16 == 0 and small.fc2.out_features % 16 == 0
    _assert_equivalent(model, small, x)
    with pytest.raises(ValueError, match="cannot be shrunk"):
        shrink_masked(wb.pretrained("mlp"), keep={2: torch.arange(5)}, example_inputs=x[:4])


def test_never_removes_every_unit(digits):
    x = digits.flatten(1)
    model = wb.pretrained("mlp")
    apply_masks(model, {"fc2.weight": torch.zeros(100, 300, dtype=torch.bool)})
    small, report = shrink_masked(model, example_inputs=x[:4])
    assert small.fc2.out_features == 1
    assert any("kept 1" in note for note in report.notes)
    _assert_equivalent(model, small, x)


def test_plain_sequential(digits):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 30), nn.Tanh(), nn.Linear(30, 10)
    ).eval()
    wb.prune(model, sparsity=0.5, pattern="neuron", scope="local")
    small, _report = shrink_masked(model, example_inputs=digits[:4])
    assert small[1].out_features == 20 and small[3].out_features == 15
    _assert_equivalent(model, small, digits)
    _assert_plain(small)


class DownBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.downsample(x))


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 1), nn.ReLU())
        self.block = DownBlock(8, 16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.block(self.stem(x)).mean(dim=(2, 3)))


def test_resnet_block_with_downsample(digits):
    torch.manual_seed(0)
    model = TinyResNet()
    for bn in (model.block.bn1, model.block.bn2, model.block.downsample[1]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2)
        bn.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    groups = trace_groups(model, digits[:2]).groups
    residual = next(g for g in groups if any(m.param == "block.conv2.weight" for m in g.producers))
    assert {m.param for m in residual.producers} == {"block.conv2.weight", "block.downsample.0.weight"}
    # the same 6 filters pruned on both branches of the residual sum, half the stem (1×1, no padding)
    drop = torch.tensor([0, 3, 5, 8, 9, 14])
    rows = torch.ones(16, dtype=torch.bool)
    rows[drop] = False
    stem_rows = torch.arange(8) % 2 == 0
    apply_masks(
        model,
        {
            "block.conv2.weight": rows.view(-1, 1, 1, 1).expand(16, 16, 3, 3).clone(),
            "block.downsample.0.weight": rows.view(-1, 1, 1, 1).expand(16, 8, 1, 1).clone(),
            "stem.0.weight": stem_rows.view(-1, 1, 1, 1).expand(8, 1, 1, 1).clone(),
        },
    )
    small, _report = shrink_masked(model, example_inputs=digits[:4])
    assert small.block.conv2.out_channels == 10 and small.block.downsample[0].out_channels == 10
    assert small.block.bn2.num_features == 10 and small.fc.in_features == 10
    _assert_equivalent(model, small, digits)
    _assert_plain(small)


class Cumsum(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 20)
        self.fc2 = nn.Linear(20, 10)

    def forward(self, x):
        return self.fc2(torch.cumsum(F.relu(self.fc1(x.flatten(1))), dim=1))


def test_unmapped_op_warns_and_keeps_channels(digits):
    model = Cumsum().eval()
    wb.prune(model, sparsity=0.5, pattern="neuron")
    with pytest.warns(UserWarning, match="cumsum"):
        small, report = shrink_masked(model, example_inputs=digits[:4])
    assert small.fc1.out_features == 20  # left whole, never silently wrong
    _assert_equivalent(model, small, digits)
    assert any("cannot shrink" in n for n in report.notes)


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x.flatten(1))
        return -self.fc(x.flatten(1))


def test_untraceable_model_raises(digits):
    with pytest.raises(ValueError, match="cannot trace DataDependent"):
        shrink_masked(DataDependent(), example_inputs=digits[:4])


def test_conv_flatten_linear(digits):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 36, 20),
        nn.ReLU(),
        nn.Linear(20, 10),
    )
    model[1].bias.data.uniform_(-1, 1)  # removed filters emit relu(BN shift): folded into the Linear bias
    model[1].running_mean.uniform_(-1, 1)
    model.eval()
    wb.prune(model, sparsity=0.5, pattern="filter", scope="local")
    small, _report = shrink_masked(model, example_inputs=digits[:4])
    assert small[0].out_channels == 4 and small[4].in_features == 4 * 36
    _assert_equivalent(model, small, digits)

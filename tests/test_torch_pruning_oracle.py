"""Torch-Pruning (DepGraph) as a reference: the same groups pruned at the same ratio give the same sizes."""

import copy

import pytest
import torch
from torch import nn

import workbench as wb

tp = pytest.importorskip("torch_pruning")


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + identity)


class TinyResNet(nn.Module):
    def __init__(self, width=16, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = nn.Sequential(BasicBlock(width, width, 1), BasicBlock(width, width, 1))
        self.layer2 = nn.Sequential(BasicBlock(width, 2 * width, 2), BasicBlock(2 * width, 2 * width, 1))
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x):
        return self.fc(self.layer2(self.layer1(self.stem(x))).mean((2, 3)))


def _torch_pruning_parameters(model, inputs, last, ratio):
    model = copy.deepcopy(model)
    pruner = tp.pruner.MetaPruner(
        model,
        inputs,
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=ratio,
        ignored_layers=[model.get_submodule(last)],
    )
    pruner.step()
    return sum(p.numel() for p in model.parameters())


def _cases():
    torch.manual_seed(0)
    return {
        "mlp": (wb.pretrained("mlp"), torch.randn(4, 64), "fc3"),
        "cnn": (wb.pretrained("cnn"), torch.randn(4, 1, 8, 8), "fc"),
        "resnet": (TinyResNet().eval(), torch.randn(4, 3, 16, 16), "fc"),
    }


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet"])
@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_parameter_counts_match_torch_pruning(name, ratio):
    model, inputs, last = _cases()[name]
    small = wb.shrink(model, inputs, sparsity=ratio, criterion="l1")
    assert wb.count_parameters(small) == _torch_pruning_parameters(model, inputs, last, ratio)

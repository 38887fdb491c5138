"""Property tests: random stacks of supported layers, random structured masks, shrink equals masked."""

import torch
import torch.nn.functional as F
from helpers import trained_looking_norms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from workbench.masks import apply_masks
from workbench.structure.shrink import shrink_masked

BLOCKS = ("conv", "dw", "res", "cat", "gn", "glu")


class Stack(nn.Module):
    """A CNN read from a list of (block kind, width) and a Linear tail."""

    def __init__(self, spec, act, channels=3, hidden=12, classes=5):
        super().__init__()
        self.spec, self.act = [kind for kind, _ in spec], act
        self.blocks = nn.ModuleList()
        for kind, width in spec:
            block = nn.ModuleDict()
            if kind == "conv":
                block["conv"], block["bn"] = nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width)
            elif kind == "dw":
                width = channels * (1 + width % 2)  # depthwise, channel multiplier 1 or 2
                block["conv"], block["bn"] = (
                    nn.Conv2d(channels, width, 3, padding=1, groups=channels),
                    nn.BatchNorm2d(width),
                )
            elif kind == "res":
                block["conv"], block["bn"], width = nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), channels
            elif kind == "cat":
                block["a"], block["b"] = nn.Conv2d(channels, width, 1), nn.Conv2d(channels, width + 1, 1)
                width = 2 * width + 1
            elif kind == "glu":  # one conv makes value and gate, chunked in two
                block["conv"] = nn.Conv2d(channels, 2 * width, 1)
            else:
                width = 2 * (width // 2 + 1)
                block["conv"], block["gn"] = nn.Conv2d(channels, width, 1), nn.GroupNorm(width // 2, width)
            self.blocks.append(block)
            channels = width
        self.fc1, self.fc2 = nn.Linear(channels, hidden), nn.Linear(hidden, classes)

    def forward(self, x):
        act = F.relu if self.act == "relu" else F.gelu
        for kind, block in zip(self.spec, self.blocks):
            if kind == "cat":
                x = torch.cat([act(block["a"](x)), block["b"](x)], dim=1)
            elif kind == "gn":
                x = act(block["gn"](block["conv"](x)))
            elif kind == "glu":
                value, gate = block["conv"](x).chunk(2, dim=1)
                x = value * torch.sigmoid(gate)
            elif kind == "res":
                x = x + act(block["bn"](block["conv"](x)))
            else:
                x = act(block["bn"](block["conv"](x)))
        return self.fc2(act(self.fc1(x.mean(dim=(2, 3)))))


@st.composite
def masked_models(draw):
    spec = draw(st.lists(st.tuples(st.sampled_from(BLOCKS), st.integers(2, 6)), min_size=1, max_size=4))
    torch.manual_seed(draw(st.integers(0, 2**16)))
    model = Stack(spec, draw(st.sampled_from(["relu", "gelu"])))
    trained_looking_norms(model)
    masks, drop = {}, draw(st.floats(0.2, 0.9))
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and name != "fc2":
            rows = torch.rand(m.weight.shape[0]) > drop
            if draw(st.booleans()):  # filters/neurons
                masks[f"{name}.weight"] = rows.view(-1, *[1] * (m.weight.dim() - 1)).expand_as(m.weight).clone()
            elif m.weight.shape[1] > 1:  # input channels
                cols = torch.rand(m.weight.shape[1]) > drop
                masks[f"{name}.weight"] = cols.view(1, -1, *[1] * (m.weight.dim() - 2)).expand_as(m.weight).clone()
    apply_masks(model, masks)
    return model


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masked_models())
def test_random_stacks_shrink_exactly(model):
    x = torch.randn(4, 3, 6, 6)
    small, report = shrink_masked(model, example_inputs=x)
    with torch.no_grad():
        expected, got = model(x), small(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= 1e-5 * expected.abs().max().clamp_min(1e-6)
    assert report.params_after <= report.params_before
    for name, m in small.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert m.weight.shape[0] >= 1 and m.weight.shape[1] >= 1, name
        if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            assert m.weight.shape[0] >= 1, name

"""Ops of the models users bring, each one entry of the op table: spatial padding (TF "same" padding),
transposed Linear layers (GPT-2's ``Conv1D``, ``addmm``) and squeeze-and-excitation gates.

Every shrink here must compute what the masked model computes and really remove parameters."""

import copy
import warnings

import hf_models
import pytest
import torch
import torch.nn.functional as F
from helpers import trained_looking_norms
from torch import nn

import workbench as wb
from workbench.layers import prunable_layers
from workbench.masks import apply_masks
from workbench.structure.graph import trace_groups
from workbench.structure.group_prune import GroupPruner
from workbench.structure.shrink import shrink_masked


def _outputs(model, inputs):
    with torch.no_grad():
        out = model(*inputs)
    return out.logits if hasattr(out, "logits") else out


def _assert_close(expected, got, rtol=1e-5):
    assert got.shape == expected.shape
    scale = expected.abs().max().clamp_min(1e-12)
    assert ((got - expected).abs().max() / scale).item() <= rtol


def _shrink_like_masked(model, inputs, check, sparsity=0.5, pattern=None):
    """``wb.shrink`` at ``sparsity``, checked against the model masked with the same whole-group masks."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every op of these models is supported: no warning
        small, report = wb.shrink_with_report(model, inputs, sparsity=sparsity, pattern=pattern)
        masked = copy.deepcopy(model)
        apply_masks(masked, GroupPruner(model, "l1", inputs, pattern=pattern).masks(sparsity))
    _assert_close(_outputs(masked, check), _outputs(small, check))
    assert report.params_after < report.params_before
    return small, report


def _group_of(model, inputs, param):
    return next(g for g in trace_groups(model, inputs).groups if any(m.param == param for m in g.producers))


# ---- spatial padding -----------------------------------------------------------------------------------
class SamePadded(nn.Module):
    """TF-style "same" padding: ``F.pad`` of the spatial dims before unpadded (and depthwise) convs."""

    def __init__(self, width=12, classes=5):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, width, 3, 2), nn.BatchNorm2d(width)
        self.depthwise = nn.Conv2d(width, width, 3, 1, groups=width)
        self.conv2, self.fc = nn.Conv2d(width, 16, 1), nn.Linear(16, classes)

    def forward(self, x):
        x = F.relu6(self.bn1(self.conv1(F.pad(x, (0, 1, 0, 1)))))
        x = F.relu6(self.depthwise(F.pad(x, (1, 1, 1, 1), mode="constant", value=0.0)))
        x = F.relu(self.conv2(F.pad(x, (0, 0, 0, 0))))
        return self.fc(x.mean((2, 3)))


class ChannelPadded(nn.Module):
    """Pads the channel dim: the padded channels are fixed zeros the next conv reads, so the group stays whole."""

    def __init__(self, width=12, classes=5):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, width, 3), nn.BatchNorm2d(width)
        self.conv2, self.fc = nn.Conv2d(width + 2, 8, 1), nn.Linear(8, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return self.fc(F.relu(self.conv2(F.pad(x, (0, 0, 0, 0, 1, 1)))).mean((2, 3)))


def _images(n=4, size=16):
    return (torch.randn(n, 3, size, size),)


def test_padding_passes_channels_through():
    torch.manual_seed(0)
    model = trained_looking_norms(SamePadded(), spread=0.3)
    group = _group_of(model, _images(), "conv1.weight")
    assert group.prunable and {"depthwise.weight", "conv2.weight"} <= {m.param for m in group.members}
    small, _ = _shrink_like_masked(model, _images(), _images(8), pattern="filter")
    assert small.conv1.out_channels == small.depthwise.in_channels == small.conv2.in_channels == 6


def test_padded_constant_channels_are_kept_not_folded():
    """Filter masks leave BatchNorm's shift: a removed channel's constant is padded with zeros, so it stays."""
    torch.manual_seed(0)
    model = trained_looking_norms(SamePadded(), spread=0.3)
    wb.prune(model, sparsity=0.5, pattern="filter", scope="local")
    small, report = shrink_masked(model, example_inputs=_images())
    check = _images(8)
    _assert_close(_outputs(model, check), _outputs(small, check))
    assert small.conv2.out_channels == 8 and small.conv1.out_channels < 12
    assert any("varies" in note for note in report.notes)


def test_padding_the_channel_dim_keeps_the_group_whole():
    torch.manual_seed(0)
    model = trained_looking_norms(ChannelPadded(), spread=0.3)
    with pytest.warns(UserWarning, match="node 'pad'.*pads the channel dim"):
        group = _group_of(model, _images(), "conv1.weight")
    assert not group.prunable and any("'pad'" in reason for reason in group.reasons)
    with pytest.warns(UserWarning, match="pads the channel dim"):
        small = wb.shrink(model, _images(), sparsity=0.5, pattern="filter")
    assert small.conv1.out_channels == 12 and small.conv2.in_channels == 14 and small.conv2.out_channels == 4


# ---- transposed Linear layers (GPT-2's Conv1D) ---------------------------------------------------------
class Conv1D(nn.Module):
    """``transformers.pytorch_utils.Conv1D``: a Linear with its weight stored as (in, out), computed by addmm."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf, self.nx = nf, nx
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.2)
        self.bias = nn.Parameter(torch.randn(nf) * 0.2)

    def forward(self, x):
        size_out = (*x.size()[:-1], self.nf)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(size_out)


class TransposedMLP(nn.Module):
    def __init__(self, width=16, hidden=24, classes=5):
        super().__init__()
        self.c_fc, self.c_proj, self.head = Conv1D(hidden, width), Conv1D(width, hidden), nn.Linear(width, classes)

    def forward(self, x):
        return self.head(torch.tanh(self.c_proj(F.gelu(self.c_fc(x)))).mean(1))


def _tokens(n=4):
    return (torch.randn(n, 6, 16),)


def test_transposed_linear_produces_and_consumes_along_its_weight_dims():
    torch.manual_seed(0)
    model = TransposedMLP().eval()
    group = _group_of(model, _tokens(), "c_fc.weight")
    assert group.prunable and group.size == 24
    assert {(m.param, m.dim, m.role) for m in group.members} == {
        ("c_fc.weight", 1, "producer"),
        ("c_fc.bias", 0, "member"),
        ("c_proj.weight", 0, "consumer"),
    }
    small, report = _shrink_like_masked(model, _tokens(), _tokens(8))
    assert (small.c_fc.nf, small.c_fc.nx, small.c_proj.nx, small.c_proj.nf) == (12, 16, 12, 8)
    assert tuple(small.c_fc.weight.shape) == (16, 12) and tuple(small.c_proj.weight.shape) == (12, 8)
    assert "c_fc: 16×24 → 16×12" in report.lines()


def test_transposed_linear_folds_the_constant_of_a_removed_unit():
    """Zero columns of c_fc with its bias left: each removed unit emits gelu(bias), folded into c_proj's bias."""
    torch.manual_seed(0)
    model = TransposedMLP().eval()
    dead = torch.arange(24) % 3 == 0
    apply_masks(model, {"c_fc.weight": (~dead).view(1, -1).expand(16, 24).clone()})
    small, _ = shrink_masked(model, example_inputs=_tokens())
    assert small.c_fc.nf == small.c_proj.nx == 16
    check = _tokens(8)
    _assert_close(_outputs(model, check), _outputs(small, check))


def test_wb_prune_leaves_transposed_layers_to_group_pruning():
    torch.manual_seed(0)
    model = TransposedMLP().eval()
    assert set(prunable_layers(model)) == {"c_fc", "c_proj", "head"}
    pruner = GroupPruner(model, "l1", _tokens(), exclude=["c_fc"])
    assert pruner.groups and all(m.module != "c_fc" for g in pruner.groups for m in g.producers)


# ---- squeeze-and-excitation ----------------------------------------------------------------------------
class SqueezeExcitation(nn.Module):
    """torchvision's ``SqueezeExcitation``: 1×1 convs on the pooled channels, ``scale * input``."""

    def __init__(self, channels, squeezed):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, squeezed, 1), nn.Conv2d(squeezed, channels, 1)

    def forward(self, x):
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return scale * x


class LinearSqueezeExcitation(nn.Module):
    """The SENet paper's form: Linear layers on the pooled vector, the gate viewed back to (N, C, 1, 1)."""

    def __init__(self, channels, squeezed):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(channels, squeezed), nn.Linear(squeezed, channels)

    def forward(self, x):
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        return x * gate.view(*gate.shape, 1, 1)


class SENet(nn.Module):
    def __init__(self, block=SqueezeExcitation, width=16, classes=5):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width)
        self.se = block(width, 4)
        self.out, self.fc = nn.Conv2d(width, 8, 3, padding=1), nn.Linear(8, classes)

    def forward(self, x):
        x = self.se(F.relu(self.bn(self.conv(x))))
        return self.fc(F.relu(self.out(x)).mean((2, 3)))


@pytest.mark.parametrize("block", [SqueezeExcitation, LinearSqueezeExcitation])
def test_gate_and_gated_channels_form_one_group(block):
    torch.manual_seed(0)
    model = trained_looking_norms(SENet(block), spread=0.3)
    group = _group_of(model, _images(), "conv.weight")
    assert group.prunable and group.size == 16
    assert {m.param for m in group.producers} == {"conv.weight", "se.fc2.weight"}
    assert {"se.fc1.weight", "out.weight", "bn.weight"} <= {m.param for m in group.members}
    small, _ = _shrink_like_masked(model, _images(), _images(8))
    assert small.conv.out_channels == small.se.fc2.weight.shape[0] == small.se.fc1.weight.shape[1] == 8
    assert small.out.in_channels == 8


def test_gated_channels_shrink_from_filter_masks():
    torch.manual_seed(0)
    model = trained_looking_norms(SENet(), spread=0.3)
    wb.prune(model, sparsity=0.5, pattern="filter", scope="local")
    small, _ = shrink_masked(model, example_inputs=_images())
    check = _images(8)
    _assert_close(_outputs(model, check), _outputs(small, check))
    assert wb.count_parameters(small) < wb.count_parameters(model)


# ---- Hugging Face models from small configs (random weights, no download) ------------------------------
transformers = pytest.importorskip("transformers")


def _gpt2():
    model = hf_models.gpt2()
    model.config.use_cache = False
    return model, (hf_models.tokens(2),), (hf_models.tokens(4),)


def test_gpt2_loses_heads_and_mlp_width_exactly(tmp_path):
    model, inputs, check = _gpt2()
    small, report = _shrink_like_masked(model, inputs, check)
    for block in small.transformer.h:
        attn = block.attn
        assert (attn.num_heads, attn.split_size, attn.c_attn.nf, attn.c_proj.nx) == (2, 32, 96, 32)
        assert block.mlp.c_fc.nf == block.mlp.c_proj.nx == 128
    assert "transformer.h.0.attn: 4 heads → 2 heads" in report.lines()
    assert 1 - report.params_after / report.params_before > 0.4
    residual = _group_of(model, inputs, "transformer.h.0.attn.c_proj.weight")
    assert residual.size == 64 and any("layer_norm" in reason for reason in residual.reasons)
    wb.save_shrunk(small, tmp_path / "gpt2.pt")
    again = wb.load_shrunk(tmp_path / "gpt2.pt", template=_gpt2()[0])
    assert again.transformer.h[1].mlp.c_fc.nf == 128
    assert torch.equal(_outputs(again, check), _outputs(small, check))


def test_gpt2_head_masks_shrink():
    model, inputs, check = _gpt2()
    wb.prune(model, sparsity=0.5, pattern="head", scope="local")
    small, _ = shrink_masked(model, example_inputs=inputs)
    assert [block.attn.num_heads for block in small.transformer.h] == [2, 2]
    _assert_close(_outputs(model, check), _outputs(small, check))


def test_a_head_shrunk_gpt2_generates_what_the_masked_one_generates():
    """``generate`` with its key/value cache runs on the shrunk modules' own head counts. (GPT-2's config cannot say
    that a block keeps 2 heads of width 16 in a 64-wide stream, so ``from_pretrained`` cannot rebuild it:
    ``wb.save_shrunk`` with a template can.)"""
    model, inputs, _ = _gpt2()
    wb.prune(model, sparsity=0.5, pattern="head", scope="local")
    small, _ = shrink_masked(model, example_inputs=inputs)
    prompt = torch.randint(1, 100, (1, 6), generator=torch.Generator().manual_seed(1))
    settings = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": 0, "use_cache": True}
    with torch.no_grad():
        expected, got = model.generate(prompt, **settings), small.generate(prompt, **settings)
    assert [block.attn.num_heads for block in small.transformer.h] == [2, 2]
    assert torch.equal(got, expected) and got.shape == (1, 12)


def test_hugging_face_mobilenet_v2_same_padding_shrinks():
    model = trained_looking_norms(hf_models.mobilenet_v2(), spread=0.3)
    assert model.config.tf_padding
    _, report = _shrink_like_masked(model, _images(2, 32), _images(4, 32), pattern="filter")
    assert 1 - report.params_after / report.params_before > 0.7


def _llama(attention="sdpa"):
    model = hf_models.llama(attention)
    model.config.use_cache = False
    return model, (hf_models.tokens(2),), (hf_models.tokens(4),)


def test_llama_rms_norm_width_shrinks_exactly_with_rescaled_norms():
    """Behind RMSNorms the removed residual channels are zero, so the mean of squares over the kept D'
    channels is D/D' times the one over D: weights × sqrt(D/D') and eps × D/D' keep outputs equal."""
    model, inputs, check = _llama()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a mean over the channels is understood, not an unsupported op
        residual = _group_of(model, inputs, "model.layers.0.self_attn.o_proj.weight")
    assert residual.size == 64 and residual.prunable and not residual.changes
    assert "model.layers.0.input_layernorm" in residual.rms_norms and "model.norm" in residual.rms_norms
    assert {m.param for m in residual.producers} >= {"model.embed_tokens.weight", "model.layers.1.mlp.down_proj.weight"}
    small, report = _shrink_like_masked(model, inputs, check)
    assert not report.changed
    assert small.model.embed_tokens.weight.shape == (100, 32) and small.model.embed_tokens.embedding_dim == 32
    assert small.model.norm.variance_epsilon == pytest.approx(2 * model.model.norm.variance_epsilon)
    assert small.lm_head.in_features == 32


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_llama_loses_key_value_groups_and_mlp_width_exactly(attention):
    model, inputs, check = _llama(attention)
    mlp = _group_of(model, inputs, "model.layers.0.mlp.gate_proj.weight")
    assert mlp.prunable and mlp.size == 128
    assert {m.param for m in mlp.members} >= {
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
    }
    heads = _group_of(model, inputs, "model.layers.0.self_attn.v_proj.weight")
    assert heads.prunable and heads.size == 2  # units: key/value groups of 2 query heads each
    small, report = _shrink_like_masked(model, inputs, check)
    for block in small.model.layers:
        attn = block.self_attn
        assert (attn.q_proj.out_features, attn.k_proj.out_features, attn.v_proj.out_features) == (32, 16, 16)
        assert attn.o_proj.in_features == 32 and attn.num_key_value_groups == 2
        assert block.mlp.gate_proj.out_features == block.mlp.up_proj.out_features == block.mlp.down_proj.in_features
        assert block.mlp.down_proj.in_features == 64
    line = "model.layers.0.self_attn: 4 heads in 2 key/value groups → 2 heads in 1 key/value group"
    assert line in report.lines()
    assert 1 - report.params_after / report.params_before > 0.4
    again = _outputs(small, check)  # a second forward of the shrunk model
    assert torch.equal(again, _outputs(small, check)) and again.shape == (4, 16, 100)


def test_llama_head_masks_remove_whole_key_value_groups():
    model, inputs, check = _llama()
    wb.prune(model, sparsity=0.5, pattern="head", scope="local")
    q = model.model.layers[0].self_attn.q_proj.weight
    assert (q.abs().sum(1) == 0).sum() == 32  # two query heads, those sharing one key/value head
    small, _ = shrink_masked(model, example_inputs=inputs)
    assert [block.self_attn.k_proj.out_features for block in small.model.layers] == [16, 16]
    _assert_close(_outputs(model, check), _outputs(small, check))

"""Shrinking models written the way users write them: ResNet, MobileNetV2, ViT (fused qkv), BERT, Sequential."""

import copy
import io
import math
import warnings
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from helpers import trained_looking_norms
from torch import nn

import workbench as wb
from workbench.masks import apply_masks, get_masks
from workbench.structure.graph import trace_groups
from workbench.structure.group_prune import GroupPruner
from workbench.structure.shrink import shrink_masked


# ---- ResNet (torchvision style) ------------------------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, widths=(8, 16), num_classes=10):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(widths[0], 2)
        self.layer2 = self._make_layer(widths[1], 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[1], num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---- MobileNetV2 (torchvision style) -------------------------------------------------------------
class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, kernel=3, stride=1, groups=1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        layers = [ConvBNReLU(inp, hidden, 1)] if expand_ratio != 1 else []
        layers += [
            ConvBNReLU(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            ConvBNReLU(3, 8, 3, 2),
            InvertedResidual(8, 8, 1, 1),
            InvertedResidual(8, 12, 2, 4),
            InvertedResidual(12, 12, 1, 4),
            ConvBNReLU(12, 32, 1),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ---- ViT with a fused qkv projection (timm style) ------------------------------------------------
class FusedAttention(nn.Module):
    def __init__(self, dim, num_heads=4, qkv_bias=True):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x):
        B, N, _C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        x = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(B, N, self.num_heads * self.head_dim)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, attention=FusedAttention):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), attention(dim, num_heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, dim * 2)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, dim=32, depth=2, num_heads=4, num_classes=10, attention=FusedAttention):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, 4, 4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 17, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, num_heads, attention) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


class InputWidthAttention(FusedAttention):
    """timm's original reshape: the heads are put back to the *input* width C."""

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


# ---- BERT (Hugging Face style) -------------------------------------------------------------------
@dataclass
class BertConfig:
    vocab_size: int = 50
    hidden_size: int = 32
    num_attention_heads: int = 4
    intermediate_size: int = 64
    num_hidden_layers: int = 2
    max_position_embeddings: int = 16
    hidden_act: str = "gelu"
    num_labels: int = 3


class BertSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Linear(config.hidden_size, self.all_head_size)
        self.key = nn.Linear(config.hidden_size, self.all_head_size)
        self.value = nn.Linear(config.hidden_size, self.all_head_size)
        self.dropout = nn.Dropout(0.1)

    def transpose_for_scores(self, x):
        return x.view((*x.size()[:-1], self.num_attention_heads, self.attention_head_size)).permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask=None):
        query = self.transpose_for_scores(self.query(hidden_states))
        key = self.transpose_for_scores(self.key(hidden_states))
        value = self.transpose_for_scores(self.value(hidden_states))
        scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
        if attention_mask is not None:
            scores = scores + attention_mask
        context = torch.matmul(self.dropout(scores.softmax(dim=-1)), value).permute(0, 2, 1, 3).contiguous()
        return context.view((*context.size()[:-2], self.all_head_size))


class BertOutput(nn.Module):
    def __init__(self, config, in_size):
        super().__init__()
        self.dense = nn.Linear(in_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BertLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention = nn.ModuleDict(
            {"self": BertSelfAttention(config), "output": BertOutput(config, config.hidden_size)}
        )
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = {"gelu": nn.GELU(), "relu": nn.ReLU()}[config.hidden_act]
        self.output = BertOutput(config, config.intermediate_size)

    def forward(self, hidden_states, attention_mask=None):
        context = self.attention["self"](hidden_states, attention_mask=attention_mask)
        attended = self.attention["output"](context, input_tensor=hidden_states)
        return self.output(self.act(self.intermediate(attended)), input_tensor=attended)


class BertForSequenceClassification(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        self.config = config = config or BertConfig()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.embed_norm = nn.LayerNorm(config.hidden_size)
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.heads = nn.ModuleDict({"classifier": nn.Linear(config.hidden_size, config.num_labels)})

    def forward(self, input_ids, attention_mask=None):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        hidden = self.embed_norm(self.word_embeddings(input_ids) + self.position_embeddings(positions))
        extended = None if attention_mask is None else (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
        for layer in self.layer:
            hidden = layer(hidden, attention_mask=extended)
        pooled = torch.tanh(self.pooler(hidden[:, 0]))
        return self.heads["classifier"](pooled)


# ---- helpers -------------------------------------------------------------------------------------
def _randomize(model):
    """Trained-looking norms, so removed channels emit nonzero constants to fold."""
    torch.manual_seed(1)
    return trained_looking_norms(model, spread=0.3)


def _image_batch(n=6):
    return (torch.randn(n, 3, 16, 16),)


def _text_batch(n=6):
    ids = torch.randint(0, 50, (n, 8))
    mask = torch.ones(n, 8, dtype=torch.long)
    mask[: n // 2, 6:] = 0
    return ids, mask


def prune_heads(model, sparsity):
    """Mask the lowest-L2 heads of every attention module (any layout), on top of the current masks."""
    wb.prune(model, sparsity=sparsity, pattern="head", scope="local", compose=True)


def _prune(model, kind, sparsity):
    if kind == "cnn":
        wb.prune(model, sparsity=sparsity, pattern="filter", scope="local")
    else:
        wb.prune(model, sparsity=sparsity, pattern="neuron", scope="local")
    if kind == "attention":
        prune_heads(model, sparsity)


def _outputs(model, inputs):
    with torch.no_grad():
        return model(*inputs)


def _assert_close(expected, got, rtol=1e-5):
    assert got.shape == expected.shape
    scale = expected.abs().max().clamp_min(1e-12)
    assert ((got - expected).abs().max() / scale).item() <= rtol


def _roundtrip(model):
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    twin = copy.deepcopy(model)
    twin.load_state_dict(torch.load(buffer, weights_only=True))
    return twin


USERS = {
    "resnet": (lambda: _randomize(ResNet()), _image_batch, "cnn"),
    "mobilenet_v2": (lambda: _randomize(MobileNetV2()), _image_batch, "cnn"),
    "vit_fused_qkv": (lambda: _randomize(ViT()), _image_batch, "attention"),
    "bert": (lambda: BertForSequenceClassification().eval(), _text_batch, "attention"),
    "sequential_mlp": (
        lambda: nn.Sequential(
            nn.Flatten(), nn.Linear(48, 40), nn.ReLU(), nn.Linear(40, 30), nn.GELU(), nn.Linear(30, 10)
        ).eval(),
        lambda n=6: (torch.randn(n, 3, 4, 4),),
        "mlp",
    ),
    "sequential_cnn": (
        lambda: _randomize(
            nn.Sequential(
                nn.Conv2d(3, 12, 3),
                nn.BatchNorm2d(12),
                nn.ReLU(),
                nn.Conv2d(12, 16, 3),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(16, 10),
            )
        ),
        _image_batch,
        "cnn",
    ),
}


def _user_case(name):
    """(model, a batch to trace with, a batch to compare on, how to prune it), seeded."""
    build, batch, kind = USERS[name]
    torch.manual_seed(0)
    return build(), batch(), batch(16), kind


SPARSITIES = [0.3, 0.5, 0.7]


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("name", list(USERS))
def test_user_models_shrink_exactly(name, sparsity):
    model, inputs, check, kind = _user_case(name)
    _prune(model, kind, sparsity)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # these layers are all supported: no warning
        small, report = shrink_masked(model, example_inputs=inputs)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    _assert_close(_outputs(model, check), _outputs(small, check))
    assert sum(p.numel() for p in small.parameters()) < report.params_before
    twin = _roundtrip(small)
    _assert_close(_outputs(small, check), _outputs(twin, check), rtol=0)
    # the shrunk model is a plain model again: it traces, prunes and shrinks
    _prune(small, kind, 0.3)
    smaller, _ = shrink_masked(small, example_inputs=inputs)
    _assert_close(_outputs(small, check), _outputs(smaller, check))


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("name", list(USERS))
def test_user_models_lose_every_unit_of_whole_group_pruning(name, sparsity):
    model, inputs, check, _ = _user_case(name)
    pruner = GroupPruner(model, "l1", inputs)
    removed, _ = pruner.plan(sparsity)
    assert removed, "something to remove"
    masked = copy.deepcopy(model)
    apply_masks(masked, pruner.masks_for(removed))
    small, report = shrink_masked(masked, example_inputs=inputs)
    assert report.removed == {gid: units.tolist() for gid, units in removed.items()}
    _assert_close(_outputs(masked, check), _outputs(small, check))
    direct = wb.shrink(model, inputs, sparsity=sparsity, criterion="l1")
    assert [p.shape for p in direct.parameters()] == [p.shape for p in small.parameters()]


def test_attention_heads_are_removed_in_every_layout():
    torch.manual_seed(0)
    for model, inputs, attr, module in [
        (_randomize(ViT()), _image_batch(), "num_heads", "blocks.0.attn"),
        (BertForSequenceClassification().eval(), _text_batch(), "num_attention_heads", "layer.0.attention.self"),
    ]:
        prune_heads(model, 0.5)
        small, report = shrink_masked(model, example_inputs=inputs)
        assert getattr(small.get_submodule(module), attr) == 2
        assert f"{module}: 4 heads → 2 heads" in report.lines()
        _assert_close(_outputs(model, inputs), _outputs(small, inputs))
    assert small.layer[0].attention["self"].all_head_size == 16
    assert small.layer[0].attention["output"].dense.in_features == 16


def test_fused_qkv_members_carry_offsets():
    model = _randomize(ViT())
    heads = [g for g in trace_groups(model, _image_batch()).groups if g.attention == "blocks.1.attn"]
    assert len(heads) == 1 and heads[0].prunable and heads[0].size == 4
    rows = {(m.role, m.offset, m.outer, m.block) for m in heads[0].members if m.param == "blocks.1.attn.qkv.weight"}
    assert rows == {("member", 0, 2, 8), ("producer", 64, 1, 8)}
    assert any(
        m.param == "blocks.1.attn.proj.weight" and m.role == "consumer" and m.block == 8 for m in heads[0].members
    )


def test_forward_that_ignores_the_head_count_keeps_heads():
    torch.manual_seed(0)
    model = _randomize(ViT(attention=InputWidthAttention))
    wb.prune(model, sparsity=0.5, pattern="neuron", scope="local")
    prune_heads(model, 0.5)
    inputs = _image_batch()
    small, report = shrink_masked(model, example_inputs=inputs)
    assert small.blocks[0].attn.num_heads == 4 and small.blocks[0].mlp.fc1.out_features < 64
    assert any("heads of" in note and "kept" in note for note in report.notes)
    _assert_close(_outputs(model, inputs), _outputs(small, inputs))


def test_depthwise_conv_members_and_groups():
    model = _randomize(MobileNetV2())
    graph = trace_groups(model, _image_batch())
    hidden = next(g for g in graph.groups if any(m.param == "features.2.conv.0.0.weight" for m in g.producers))
    assert hidden.prunable and hidden.size == 32
    assert any(m.param == "features.2.conv.1.0.weight" and m.role == "member" for m in hidden.members)
    wb.prune(model, sparsity=0.5, pattern="filter", scope="local")
    small, _ = shrink_masked(model, example_inputs=_image_batch(), graph=graph)
    dw = small.features[2].conv[1][0]
    assert dw.groups == dw.in_channels == dw.out_channels < 32
    assert small.features[2].conv[2].in_channels == dw.out_channels


def test_one_graph_many_shrinks():
    torch.manual_seed(0)
    model = _randomize(ResNet())
    inputs = _image_batch()
    graph = trace_groups(model, inputs)
    widths = []
    for sparsity in (0.3, 0.6):
        masked = copy.deepcopy(model)
        wb.prune(masked, sparsity=sparsity, pattern="filter", scope="local")
        small, report = shrink_masked(masked, example_inputs=inputs, graph=graph)
        assert report.graph is graph and "trace" not in report.seconds
        _assert_close(_outputs(masked, inputs), _outputs(small, inputs))
        widths.append(sum(p.numel() for p in small.parameters()))
    assert widths[1] < widths[0]
    with pytest.raises(ValueError, match=r"another architecture.*layer2"):
        shrink_masked(ResNet(widths=(8, 24)).eval(), example_inputs=inputs, graph=graph)
    with pytest.raises(ValueError, match="graph must be a DependencyGraph"):
        shrink_masked(model, example_inputs=inputs, graph=graph.groups)


def test_masks_argument_leaves_the_model_untouched():
    model = _randomize(MobileNetV2())
    pruned = copy.deepcopy(model)
    wb.prune(pruned, sparsity=0.5, pattern="filter", scope="local")
    masks = get_masks(pruned)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inputs = _image_batch()
    small, _ = shrink_masked(model, masks, example_inputs=inputs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    _assert_close(_outputs(pruned, inputs), _outputs(small, inputs))
    with pytest.raises(ValueError, match="has shape"):
        shrink_masked(model, {"classifier.1.weight": torch.ones(3, 3, dtype=torch.bool)}, example_inputs=inputs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class Inception(nn.Module):
    """Branches concatenated along the channels, then BatchNorm and a GroupNorm'd conv."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(10)
        self.mix = nn.Conv2d(10, 8, 1)
        self.gn = nn.GroupNorm(4, 8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = F.relu(self.bn(torch.cat([self.a(x), self.b(x)], dim=1)))
        return self.fc(F.relu(self.gn(self.mix(x))).mean(dim=(2, 3)))


def test_concatenated_branches_and_group_norm():
    torch.manual_seed(0)
    model = _randomize(Inception())
    inputs = _image_batch()
    groups = trace_groups(model, inputs).groups
    b = next(g for g in groups if any(m.param == "b.weight" for m in g.producers))
    assert b.prunable and {(m.param, m.offset) for m in b.members if m.role != "producer"} >= {
        ("bn.weight", 4),
        ("mix.weight", 4),
    }
    gn = next(g for g in groups if any(m.param == "mix.weight" for m in g.producers))
    assert gn.prunable and gn.size == 4 and all(m.block == 2 for m in gn.members)  # whole norm groups of 2 channels
    apply_masks(
        model,
        {
            "a.weight": (torch.arange(4) != 1).view(-1, 1, 1, 1).expand(4, 3, 1, 1).clone(),
            "b.weight": (torch.arange(6) % 2 == 0).view(-1, 1, 1, 1).expand(6, 3, 3, 3).clone(),
            "mix.weight": (torch.arange(8) // 2 != 2).view(-1, 1, 1, 1).expand(8, 10, 1, 1).clone(),
        },
    )
    small, _ = shrink_masked(model, example_inputs=inputs)
    assert (small.a.out_channels, small.b.out_channels, small.bn.num_features, small.mix.in_channels) == (3, 3, 6, 6)
    assert (small.gn.num_groups, small.gn.num_channels, small.fc.in_features) == (3, 6, 6)
    _assert_close(_outputs(model, inputs), _outputs(small, inputs))


class SplitAtFixedSizes(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 6), nn.Linear(3, 2)

    def forward(self, x):
        a, b = self.fc1(x).split([3, 3], dim=1)  # sizes written in the code: a shrink would break them
        return self.fc2(a * torch.sigmoid(b))


class SwiGLU(nn.Module):
    """A pre-norm residual block whose MLP makes value and gate with one Linear, chunked (LLaMA-style SwiGLU)."""

    def __init__(self, width=16, hidden=24, classes=5):
        super().__init__()
        self.norm, self.w12, self.w3 = nn.LayerNorm(width), nn.Linear(width, 2 * hidden), nn.Linear(hidden, width)
        self.heads = nn.ModuleDict(
            {"a": nn.Linear(width, 2 * hidden), "b": nn.Linear(hidden, classes), "c": nn.Linear(hidden, classes)}
        )

    def forward(self, x):
        value, gate = self.w12(self.norm(x)).chunk(2, dim=-1)
        x = x + self.w3(F.silu(gate) * value)
        left, right = self.heads["a"](x.mean(dim=1)).chunk(2, dim=-1)  # pieces read separately still stay equal
        return self.heads["b"](F.relu(left)) + self.heads["c"](torch.tanh(right))


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.conv2(F.relu(self.conv1(x))).mean(dim=(2, 3)))


@pytest.mark.parametrize(
    "model,inputs,node",
    [(SplitAtFixedSizes(), (torch.randn(4, 8),), "split_with_sizes"), (Grouped(), _image_batch(), "conv2d_1")],
)
def test_unsupported_ops_warn_with_the_node_and_stay_whole(model, inputs, node):
    model.eval()
    linear = node == "split_with_sizes"
    wb.prune(model, sparsity=0.5, pattern="neuron" if linear else "filter", scope="local")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(UserWarning, match=f"node '{node}'"):
        small, _report = shrink_masked(model, example_inputs=inputs)
    first = small.fc1 if linear else small.conv1
    assert first.weight.shape[0] == (6 if linear else 8)
    _assert_close(_outputs(model, inputs), _outputs(small, inputs))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_chunked_value_and_gate_shrink_together(sparsity):
    torch.manual_seed(0)
    model, inputs = _randomize(SwiGLU()), (torch.randn(6, 5, 16),)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small, _report = wb.shrink_with_report(model, inputs, sparsity=sparsity, criterion="l1")
    kept = 24 - round(24 * sparsity)
    assert small.w12.out_features == 2 * kept and small.w3.in_features == kept
    assert (
        small.heads["a"].out_features == 2 * kept
        and small.heads["b"].in_features == small.heads["c"].in_features == kept
    )
    masked = copy.deepcopy(model)
    apply_masks(masked, GroupPruner(model, "l1", inputs).masks(sparsity))
    _assert_close(_outputs(masked, inputs), _outputs(small, inputs))


class Branching(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else self.fc(-x)


def test_untraceable_model_names_model_and_reason():
    model = Branching()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"cannot trace Branching with torch.export .*: \S"):
        shrink_masked(model, example_inputs=torch.randn(3, 4))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

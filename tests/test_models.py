"""Models: registry, configs, forward shapes, TinyViT patches and heads, parameter counts."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import workbench as wb
from workbench.models import (
    CNNConfig,
    MLP2dConfig,
    MLPConfig,
    TinyViT,
    TransformerConfig,
    build_model,
    config_from_dict,
    config_to_dict,
    count_parameters,
    model_spec,
)

INPUT_SHAPES = {
    "mlp": (1, 8, 8),
    "cnn": (1, 8, 8),
    "transformer": (1, 8, 8),
    "mlp2d": (2,),
    "mlp1d": (1, 40),
    "cnn1d": (1, 40),
}
DEFAULT_CLASSES = {"mlp": 10, "cnn": 10, "transformer": 10, "mlp2d": 3, "mlp1d": 10, "cnn1d": 10}
_built: dict[str, torch.nn.Module] = {}


def default_model(name: str) -> torch.nn.Module:
    if name not in _built:
        torch.manual_seed(0)
        _built[name] = build_model(name).eval()
    return _built[name]


# ---------------------------------------------------------------- closed-form parameter counts


def linear(fan_in: int, fan_out: int) -> int:
    return fan_in * fan_out + fan_out


def mlp_params(c: MLPConfig | MLP2dConfig) -> int:
    sizes = (c.in_features, *c.hidden, c.num_classes)
    return sum(linear(a, b) for a, b in itertools.pairwise(sizes))


def cnn_params(c: CNNConfig) -> int:
    conv = lambda i, o: 9 * i * o  # noqa: E731  (3×3, no bias)
    bn = lambda ch: 2 * ch  # noqa: E731  (weight, bias; running stats are buffers)
    block = lambda ch: 2 * (conv(ch, ch) + bn(ch))  # noqa: E731
    return (
        conv(c.in_channels, c.width)
        + bn(c.width)
        + block(c.width)
        + conv(c.width, c.width2)
        + bn(c.width2)
        + block(c.width2)
        + linear(c.width2, c.num_classes)
    )


def vit_params(c: TransformerConfig) -> int:
    tokens = (c.image_size // c.patch_size) ** 2
    inner = c.num_heads * c.head_dim
    block = (
        2 * 2 * c.dim
        + 3 * linear(c.dim, inner)
        + linear(inner, c.dim)
        + linear(c.dim, c.mlp_hidden)
        + linear(c.mlp_hidden, c.dim)
    )
    return (
        linear(c.in_channels * c.patch_size**2, c.dim)
        + tokens * c.dim
        + c.depth * block
        + 2 * c.dim
        + linear(c.dim, c.num_classes)
    )


def cnn1d_params(c) -> int:
    """Conv1d weights (no bias) + BatchNorm γ, β per stage, then the Linear over channels × remaining length."""
    total, channels, length = 0, c.in_channels, c.length
    for width in c.widths:
        total += width * channels * c.kernel_size + 2 * width
        channels, length = width, (length - 1) // 2 + 1
    return total + channels * length * c.num_classes + c.num_classes


FORMULAS = {
    "mlp": mlp_params,
    "cnn": cnn_params,
    "transformer": vit_params,
    "mlp2d": mlp_params,
    "mlp1d": mlp_params,
    "cnn1d": cnn1d_params,
}


# ---------------------------------------------------------------- registry and forward


def test_registry():
    assert set(wb.MODELS) == {"mlp", "cnn", "transformer", "mlp2d", "mlp1d", "cnn1d"}
    for name, spec in wb.MODELS.items():
        assert spec.name == name and model_spec(name) is spec
        assert spec.dataset in wb.DATASETS


@pytest.mark.parametrize("name", list(INPUT_SHAPES))
@given(batch=st.integers(min_value=1, max_value=6), data=st.data())
def test_forward_shape_and_no_batch_mixing(name, batch, data):
    model = default_model(name)
    seed = data.draw(st.integers(0, 2**16), label="seed")
    x = torch.randn((batch, *INPUT_SHAPES[name]), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (batch, DEFAULT_CLASSES[name])
        assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
        # In eval mode every sample is classified on its own: batching changes nothing.
        one_by_one = torch.cat([model(x[i : i + 1]) for i in range(batch)])
    torch.testing.assert_close(logits, one_by_one, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(INPUT_SHAPES))
def test_forward_on_real_batch(name):
    data = wb.load_dataset(wb.MODELS[name].dataset)
    x, _y = data.test.tensors
    model = default_model(name)
    with torch.no_grad():
        assert model(x[:17]).shape == (17, data.num_classes)
    assert data.input_shape == INPUT_SHAPES[name]


@pytest.mark.parametrize("name", list(INPUT_SHAPES))
def test_parameter_count_matches_sum_of_numel_and_formula(name):
    model = default_model(name)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) == FORMULAS[name](model.config)


def test_default_parameter_counts():
    assert [count_parameters(default_model(n)) for n in INPUT_SHAPES] == [50610, 112106, 69066, 4547, 15210, 34410]


def test_mlp_layers_and_flattening():
    model = default_model("mlp")
    assert [tuple(m.weight.shape) for m in (model.fc1, model.fc2, model.fc3)] == [(300, 64), (100, 300), (10, 100)]
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), model(x.reshape(4, 64)))


# ---------------------------------------------------------------- configs


hidden_sizes = st.lists(st.integers(min_value=1, max_value=40), min_size=0, max_size=4).map(tuple)


@given(hidden=hidden_sizes, classes=st.integers(2, 12))
def test_mlp_overrides_and_param_count(hidden, classes):
    model = build_model("mlp", hidden=hidden, num_classes=classes)
    assert model.config == MLPConfig(hidden=hidden, num_classes=classes)
    assert model.depth == len(hidden) + 1
    sizes = (64, *hidden, classes)
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), start=1):
        assert tuple(getattr(model, f"fc{index}").weight.shape) == (fan_out, fan_in)
    assert count_parameters(model) == mlp_params(model.config) == sum(p.numel() for p in model.parameters())
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, classes)


@given(width=st.integers(1, 12), width2=st.integers(1, 12), classes=st.integers(2, 12), channels=st.integers(1, 3))
def test_cnn_overrides_and_param_count(width, width2, classes, channels):
    model = build_model("cnn", width=width, width2=width2, num_classes=classes, in_channels=channels)
    assert model.stem[0].out_channels == width and model.down[0].out_channels == width2
    assert model.fc.in_features == width2 and model.fc.out_features == classes
    assert count_parameters(model) == cnn_params(model.config)
    assert model.eval()(torch.zeros(2, channels, 8, 8)).shape == (2, classes)


def test_config_object_and_dict_and_overrides():
    config = CNNConfig(width=4, width2=6)
    model = build_model("cnn", config, num_classes=3)
    assert model.config == CNNConfig(width=4, width2=6, num_classes=3)
    assert config.num_classes == 10, "the caller's config object must not be modified"
    from_dict = build_model("mlp", {"hidden": [16, 8], "num_classes": 4})
    assert from_dict.config == MLPConfig(hidden=(16, 8), num_classes=4)
    assert build_model("transformer", num_heads=2).blocks[0].attn.num_heads == 2


@pytest.mark.parametrize("name", list(INPUT_SHAPES))
def test_config_round_trip(name):
    config = default_model(name).config
    assert config_from_dict(name, config_to_dict(config)) == config
    # and through JSON, where tuples become lists
    assert config_from_dict(name, json.loads(json.dumps(config_to_dict(config)))) == config
    rebuilt = build_model(name, config_from_dict(name, config_to_dict(config)))
    assert count_parameters(rebuilt) == count_parameters(default_model(name))


@given(hidden=hidden_sizes, classes=st.integers(2, 12), features=st.integers(1, 100))
def test_config_round_trip_hypothesis(hidden, classes, features):
    for name, cls in (("mlp", MLPConfig), ("mlp2d", MLP2dConfig)):
        config = cls(in_features=features, hidden=hidden, num_classes=classes)
        assert config_from_dict(name, json.loads(json.dumps(config_to_dict(config)))) == config


def test_unknown_override_field():
    with pytest.raises(ValueError) as info:
        build_model("mlp", hiden=(10,))
    message = str(info.value)
    assert "hiden" in message
    for field in ("in_features", "hidden", "num_classes"):
        assert field in message


def test_unknown_dict_field():
    with pytest.raises(ValueError, match="bogus"):
        config_from_dict("cnn", {"width": 8, "bogus": 1})
    with pytest.raises(ValueError, match="bogus"):
        build_model("cnn", {"bogus": 1})


def test_wrong_config_type():
    with pytest.raises(ValueError, match="CNNConfig"):
        build_model("cnn", MLPConfig())
    with pytest.raises(ValueError, match="MLPConfig"):
        build_model("mlp", MLP2dConfig())


@pytest.mark.parametrize("name", ["resnet", "MLP", ""])
def test_unknown_model_lists_choices(name):
    for call in (lambda: build_model(name), lambda: config_from_dict(name, {}), lambda: model_spec(name)):
        with pytest.raises(ValueError) as info:
            call()
        for choice in wb.MODELS:
            assert choice in str(info.value)


# ---------------------------------------------------------------- TinyViT


def manual_patches(images: torch.Tensor, p: int) -> torch.Tensor:
    """Patches by slicing, row-major over the patch grid, each flattened channel-first."""
    batch, _, height, width = images.shape
    tokens = [
        images[:, :, r * p : (r + 1) * p, c * p : (c + 1) * p].reshape(batch, -1)
        for r in range(height // p)
        for c in range(width // p)
    ]
    return torch.stack(tokens, dim=1)


@given(
    patch=st.sampled_from([1, 2, 4]),
    grid=st.integers(1, 4),
    channels=st.integers(1, 3),
    batch=st.integers(1, 3),
)
def test_patchify_matches_manual_slicing(patch, grid, channels, batch):
    size = patch * grid
    model = TinyViT(
        TransformerConfig(
            image_size=size,
            patch_size=patch,
            in_channels=channels,
            dim=8,
            depth=1,
            num_heads=1,
            head_dim=4,
            mlp_hidden=8,
        )
    )
    images = torch.arange(batch * channels * size * size, dtype=torch.float32).reshape(batch, channels, size, size)
    patches = model.patchify(images)
    assert patches.shape == (batch, grid * grid, channels * patch * patch)
    assert torch.equal(patches, manual_patches(images, patch))
    assert model.pos_embed.shape == (1, grid * grid, 8)


def manual_attention(attn, x: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / √d) v for each head separately, heads concatenated, then the output projection."""
    d = attn.head_dim
    q, k, v = attn.q(x), attn.k(x), attn.v(x)
    heads = []
    for h in range(attn.num_heads):
        part = slice(h * d, (h + 1) * d)
        weights = torch.softmax(q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(d), dim=-1)
        heads.append(weights @ v[..., part])
    return attn.out(torch.cat(heads, dim=-1))


@given(heads=st.integers(1, 5), head_dim=st.integers(1, 9), dim=st.integers(2, 16), seed=st.integers(0, 1000))
def test_heads_and_head_dim_respected(heads, head_dim, dim, seed):
    torch.manual_seed(seed)
    model = build_model("transformer", num_heads=heads, head_dim=head_dim, dim=dim, mlp_hidden=8, depth=2).eval()
    for block in model.blocks:
        attn = block.attn
        assert (attn.num_heads, attn.head_dim) == (heads, head_dim)
        assert attn.q.out_features == attn.k.out_features == attn.v.out_features == heads * head_dim
        assert attn.out.in_features == heads * head_dim and attn.out.out_features == dim
    x = torch.randn(2, 16, dim)
    with torch.no_grad():
        torch.testing.assert_close(
            model.blocks[0].attn(x), manual_attention(model.blocks[0].attn, x), rtol=1e-4, atol=1e-5
        )
        assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert count_parameters(model) == vit_params(model.config)


@given(image=st.integers(1, 16), patch=st.integers(1, 16))
def test_vit_patch_size_must_divide_image_size(image, patch):
    if image % patch:
        with pytest.raises(ValueError) as info:
            build_model("transformer", image_size=image, patch_size=patch)
        assert str(patch) in str(info.value) and str(image) in str(info.value)
    else:
        model = build_model(
            "transformer", image_size=image, patch_size=patch, dim=8, mlp_hidden=8, num_heads=1, head_dim=4
        ).eval()
        with torch.no_grad():
            assert model(torch.randn(2, 1, image, image)).shape == (2, 10)


@pytest.mark.parametrize("patch_size", [0, -1, 3])
def test_vit_bad_patch_size_is_a_value_error(patch_size):
    with pytest.raises(ValueError, match="patch_size"):
        build_model("transformer", patch_size=patch_size)


def test_dataclass_configs_have_documented_defaults():
    assert MLPConfig() == MLPConfig(in_features=64, hidden=(300, 100), num_classes=10)
    assert MLP2dConfig() == MLP2dConfig(in_features=2, hidden=(64, 64), num_classes=3)
    assert dataclasses.asdict(TransformerConfig())["patch_size"] == 2

"""Small models to prune: an MLP, a residual CNN, a tiny ViT, and a 2-D MLP, built by name from configs.

Example:
    >>> from workbench.models import build_model
    >>> model = build_model("mlp")
    >>> [tuple(m.weight.shape) for m in (model.fc1, model.fc2, model.fc3)]
    [(300, 64), (100, 300), (10, 100)]
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class MLPConfig:
    in_features: int = 64  # flattened input size (8×8 digits)
    hidden: tuple[int, ...] = (300, 100)  # LeNet-300-100, as in Han et al. 2015
    num_classes: int = 10


@dataclass
class CNNConfig:
    in_channels: int = 1  # grayscale digits
    width: int = 32  # channels of the stem and the first residual block
    width2: int = 64  # channels after the stride-2 downsampling conv
    num_classes: int = 10


@dataclass
class TransformerConfig:
    image_size: int = 8  # square input side
    in_channels: int = 1
    patch_size: int = 2  # 2×2 patches → 16 tokens
    dim: int = 64  # embedding width of the residual stream
    depth: int = 2  # number of pre-norm encoder blocks
    num_heads: int = 4  # attention heads per block
    head_dim: int = 16  # width of one head (num_heads × head_dim need not equal dim)
    mlp_hidden: int = 128  # hidden units of each block's MLP
    num_classes: int = 10


@dataclass
class MLP2dConfig:
    in_features: int = 2  # a point in the plane
    hidden: tuple[int, ...] = (64, 64)
    num_classes: int = 3  # spirals have three arms


@dataclass
class MLP1dConfig:
    in_features: int = 40  # an MNIST-1D signal
    hidden: tuple[int, ...] = (100, 100)  # the MLP baseline of Greydanus & Kobak
    num_classes: int = 10


@dataclass
class CNN1dConfig:
    in_channels: int = 1
    length: int = 40  # samples per signal
    widths: tuple[int, ...] = (32, 64, 64)  # channels of each Conv1d–BN–ReLU stage (stride 2, kernel 5)
    kernel_size: int = 5
    num_classes: int = 10


class MLP(nn.Module):
    """Fully connected ReLU network; layers are named fc1, fc2, … so masks read well."""

    def __init__(self, config: MLPConfig | MLP2dConfig | None = None):
        super().__init__()
        self.config = config or MLPConfig()
        sizes = (self.config.in_features, *self.config.hidden, self.config.num_classes)
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), start=1):
            self.add_module(f"fc{index}", nn.Linear(fan_in, fan_out))
        self.depth = len(sizes) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for index in range(1, self.depth + 1):
            x = getattr(self, f"fc{index}")(x)
            if index < self.depth:
                x = F.relu(x)
        return x


class ConvBNReLU(nn.Sequential):
    """3×3 convolution, BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """Two Conv–BN layers with an identity shortcut: relu(x + bn2(conv2(relu(bn1(conv1(x))))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(out)))


class CNN(nn.Module):
    """stem → residual block → stride-2 conv → residual block → global average pool → linear."""

    def __init__(self, config: CNNConfig | None = None):
        super().__init__()
        self.config = config or CNNConfig()
        c = self.config
        self.stem = ConvBNReLU(c.in_channels, c.width)
        self.block1 = ResidualBlock(c.width)
        self.down = ConvBNReLU(c.width, c.width2, stride=2)
        self.block2 = ResidualBlock(c.width2)
        self.fc = nn.Linear(c.width2, c.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.down(self.block1(self.stem(x))))
        return self.fc(x.mean(dim=(2, 3)))


class CNN1d(nn.Module):
    """Conv1d–BN–ReLU stages of stride 2, then flatten → linear: the MNIST-1D convolutional baseline, with BatchNorm."""

    def __init__(self, config: CNN1dConfig | None = None):
        super().__init__()
        self.config = config or CNN1dConfig()
        c = self.config
        stages, channels, length = [], c.in_channels, c.length
        for width in c.widths:
            stages += [
                nn.Conv1d(channels, width, c.kernel_size, stride=2, padding=c.kernel_size // 2, bias=False),
                nn.BatchNorm1d(width),
                nn.ReLU(inplace=True),
            ]
            channels, length = width, (length - 1) // 2 + 1
        self.features = nn.Sequential(*stages)
        self.fc = nn.Linear(channels * length, c.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with separate q/k/v/out projections, so single heads can be removed."""

    def __init__(self, dim: int, num_heads: int, head_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        inner = num_heads * head_dim
        self.q = nn.Linear(dim, inner)
        self.k = nn.Linear(dim, inner)
        self.v = nn.Linear(dim, inner)
        self.out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, tokens, self.num_heads, self.head_dim).transpose(1, 2)

        mixed = F.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)))
        return self.out(mixed.transpose(1, 2).reshape(batch, tokens, self.num_heads * self.head_dim))


class FeedForward(nn.Module):
    """Linear → GELU → Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.dim)
        self.attn = MultiHeadSelfAttention(config.dim, config.num_heads, config.head_dim)
        self.norm2 = nn.LayerNorm(config.dim)
        self.mlp = FeedForward(config.dim, config.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """Vision transformer over p×p patches: patch embedding + positions, encoder blocks, mean-pool, linear."""

    def __init__(self, config: TransformerConfig | None = None):
        super().__init__()
        self.config = config or TransformerConfig()
        c = self.config
        if c.patch_size < 1 or c.image_size % c.patch_size:
            raise ValueError(f"patch_size {c.patch_size} must divide image_size {c.image_size}")
        num_patches = (c.image_size // c.patch_size) ** 2
        self.patch_embed = nn.Linear(c.in_channels * c.patch_size**2, c.dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, c.dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(EncoderBlock(c) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.num_classes)

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, tokens, C·p·p), patches in row-major order."""
        p = self.config.patch_size
        patches = F.unfold(images, kernel_size=p, stride=p)
        return patches.transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(self.patchify(x)) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))


@dataclass(frozen=True)
class ModelSpec:
    """How to build one named model and what it is trained on."""

    name: str
    config_class: type
    build: type  # the nn.Module class, called with a config
    dataset: str  # dataset of the shipped checkpoint
    description: str


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("mlp", MLPConfig, MLP, "digits", "LeNet-300-100 MLP (64→300→100→10, ReLU)"),
        ModelSpec("cnn", CNNConfig, CNN, "digits", "Conv–BN–ReLU net with two residual blocks, global pooling"),
        ModelSpec(
            "transformer", TransformerConfig, TinyViT, "digits", "tiny ViT, 2×2 patches, 2 pre-norm blocks × 4 heads"
        ),
        ModelSpec("mlp2d", MLP2dConfig, MLP, "spirals", "MLP for 2-D point sets (2→64→64→3)"),
        ModelSpec("mlp1d", MLP1dConfig, MLP, "mnist1d", "MLP for MNIST-1D (40→100→100→10, ReLU)"),
        ModelSpec("cnn1d", CNN1dConfig, CNN1d, "mnist1d", "three Conv1d–BN–ReLU stages (stride 2) and a linear"),
    )
}


def model_spec(name: str) -> ModelSpec:
    """The registry entry of a model name, or a ValueError listing the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, config=None, **overrides) -> nn.Module:
    """Build an untrained model by name, from its default config, a config object, or field overrides.

    Example:
        >>> build_model("transformer", num_heads=2).blocks[0].attn.num_heads
        2
    """
    spec = model_spec(name)
    if config is None:
        config = spec.config_class()
    elif isinstance(config, dict):
        config = config_from_dict(name, config)
    elif not isinstance(config, spec.config_class):
        raise ValueError(f"model {name!r} takes a {spec.config_class.__name__}, got {type(config).__name__}")
    if overrides:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(config)}
        if unknown:
            allowed = ", ".join(f.name for f in dataclasses.fields(config))
            raise ValueError(f"unknown config field(s) {sorted(unknown)} for {name!r}; allowed: {allowed}")
        config = dataclasses.replace(config, **overrides)
    return spec.build(config)


def config_to_dict(config) -> dict:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(config)


def config_from_dict(name: str, values: dict):
    """Rebuild the config dataclass of model ``name`` from a dict (tuples restored from JSON lists)."""
    spec = model_spec(name)
    fields = {f.name for f in dataclasses.fields(spec.config_class)}
    unknown = set(values) - fields
    if unknown:
        raise ValueError(
            f"unknown config field(s) {sorted(unknown)} for {name!r}; allowed: {', '.join(sorted(fields))}"
        )
    return spec.config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def input_shape(model: nn.Module) -> tuple[int, ...] | None:
    """The shape of one input sample of a workbench model, from its config (None for other models).

    Example:
        >>> input_shape(build_model("cnn")), input_shape(build_model("cnn1d")), input_shape(nn.Linear(2, 2))
        ((1, 8, 8), (1, 40), None)
    """
    config = getattr(model, "config", None)
    if hasattr(config, "in_features"):
        return (config.in_features,)
    if hasattr(config, "length"):
        return (config.in_channels, config.length)
    if hasattr(config, "in_channels"):
        side = getattr(config, "image_size", 8)  # the CNN is size-agnostic; digits are 8×8
        return (config.in_channels, side, side)
    return None


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of a model."""
    return sum(p.numel() for p in model.parameters())

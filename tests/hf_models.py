"""Hugging Face ``transformers`` models from small configs (random weights, eval mode, no download), seeded.

The tests' users' architectures; ``transformers`` is a test-only dependency, imported when a model is built.
"""

from __future__ import annotations

import torch


def _seeded(build):
    def seeded(*args, **kwargs):
        torch.manual_seed(0)
        return build(*args, **kwargs).eval()

    seeded.__name__, seeded.__doc__ = build.__name__, build.__doc__
    return seeded


@_seeded
def gpt2():
    """GPT-2: 2 layers, width 64, 4 heads, 100 tokens; its ``lm_head`` is tied to the token embedding."""
    import transformers

    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32)
    return transformers.GPT2LMHeadModel(config)


@_seeded
def llama(attention="sdpa"):
    """Llama: 2 layers, width 64, 4 query heads in 2 key/value groups, MLP 128, RMSNorm."""
    import transformers

    config = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
        max_position_embeddings=32,
        attn_implementation=attention,
    )
    return transformers.LlamaForCausalLM(config)


@_seeded
def mobilenet_v2():
    """MobileNetV2 at 32×32, depth multiplier 0.35 (TF-style "same" padding), 10 classes."""
    import transformers

    config = transformers.MobileNetV2Config(image_size=32, depth_multiplier=0.35, num_labels=10)
    return transformers.MobileNetV2ForImageClassification(config)


@_seeded
def vit():
    """ViT: 32×32 images in 8×8 patches, 2 layers, width 64, 4 heads, MLP 128, 10 classes."""
    import transformers

    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        num_labels=10,
    )
    return transformers.ViTForImageClassification(config)


@_seeded
def bert():
    """BERT: 2 layers, width 64, 4 heads, MLP 128, 100 tokens, 3 classes."""
    import transformers

    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=32,
        num_labels=3,
    )
    return transformers.BertForSequenceClassification(config)


@_seeded
def convnext():
    """ConvNeXt at 32×32: stage widths 16, 32, 64, 128, depths 1, 1, 2, 1, 10 classes."""
    import transformers

    config = transformers.ConvNextConfig(
        image_size=32, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 2, 1], num_labels=10
    )
    return transformers.ConvNextForImageClassification(config)


def images(n: int) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(n))


def tokens(n: int, length: int = 16) -> torch.Tensor:
    return torch.randint(0, 100, (n, length), generator=torch.Generator().manual_seed(n))

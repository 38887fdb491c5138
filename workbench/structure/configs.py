"""Keep a shrunk model's ``config`` (Hugging Face style) in step with its new shapes.

After a shrink the widths live in the layers; code that reads ``model.config`` (``generate``, caches,
``save_pretrained`` → ``from_pretrained``) needs the config to say the same. Each attribute is set
only when every layer it describes agrees (a uniform shrink); otherwise it is left and a note says why.

Example:
    >>> import torch, transformers, workbench as wb
    >>> config = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
    ...     num_attention_heads=4, num_key_value_heads=2, vocab_size=100)
    >>> model = transformers.LlamaForCausalLM(config).eval()
    >>> small = wb.shrink(model, (torch.randint(0, 100, (2, 8)),), sparsity=0.5)
    >>> c = small.config
    >>> c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads
    (32, 64, 2, 1)
"""

from __future__ import annotations

from torch import nn

from ..attention import attention_layouts
from ..layer_kinds import weight_dims
from ..layers import is_prunable_layer
from .norms import epsilons_of


def _norms(model: nn.Module) -> dict[str, nn.Module]:
    """LayerNorm/RMSNorm-like modules: a 1-d weight and an epsilon attribute."""
    return {
        name: module
        for name, module in model.named_modules()
        if getattr(module, "weight", None) is not None and module.weight.dim() == 1 and epsilons_of(module)
    }


def _outputs(model: nn.Module) -> dict[str, int]:
    return {
        name: module.weight.shape[weight_dims(module)[0]]
        for name, module in model.named_modules()
        if is_prunable_layer(module)
    }


def _agreed(values, attribute, notes) -> int | float | None:
    values = set(values)
    if len(values) > 1:
        notes.append(f"config.{attribute} left as it was: the layers it describes now differ ({sorted(values)})")
        return None
    return values.pop() if values else None


def update_config(small: nn.Module, before: nn.Module) -> list[str]:
    """Set ``small.config``'s widths, head counts and RMSNorm epsilon from its layers; notes on what could not be."""
    config = getattr(small, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        return []
    notes: list[str] = []
    updates = {}
    old_norms, new_norms = _norms(before), _norms(small)
    hidden = getattr(config, "hidden_size", None)
    if isinstance(hidden, int):
        widths = [
            new_norms[n].weight.numel()
            for n, norm in old_norms.items()
            if norm.weight.numel() == hidden and n in new_norms
        ]
        updates["hidden_size"] = _agreed(widths, "hidden_size", notes)
    if isinstance(getattr(config, "rms_norm_eps", None), float):
        epsilons = [
            eps for norm in new_norms.values() if (eps := epsilons_of(norm).get("variance_epsilon")) is not None
        ]
        updates["rms_norm_eps"] = _agreed(epsilons, "rms_norm_eps", notes)
    old_outputs, new_outputs = _outputs(before), _outputs(small)
    for attribute in ("intermediate_size", "n_inner"):
        width = getattr(config, attribute, None)
        if isinstance(width, int) and width != hidden:
            outputs = [new_outputs[name] for name, w in old_outputs.items() if w == width and name in new_outputs]
            updates[attribute] = _agreed(outputs, attribute, notes)
    layouts = attention_layouts(small).values()
    if layouts and isinstance(getattr(config, "num_attention_heads", None), int):
        updates["num_attention_heads"] = _agreed([layout.num_heads for layout in layouts], "num_attention_heads", notes)
        if isinstance(getattr(config, "num_key_value_heads", None), int):
            updates["num_key_value_heads"] = _agreed([layout.units for layout in layouts], "num_key_value_heads", notes)
    for attribute, value in updates.items():
        if value is not None:
            setattr(config, attribute, value)
    stages = getattr(config, "hidden_sizes", None)  # per-stage widths (ConvNeXt, ResNet): not mapped to layers
    widths = {norm.weight.numel() for norm in new_norms.values()}
    if isinstance(stages, list) and widths and not set(stages) <= widths:
        notes.append(
            f"config.hidden_sizes {stages} left as it was: the stages' widths are now {sorted(widths)}; "
            "save with wb.save_shrunk"
        )
    heads, hidden = getattr(config, "num_attention_heads", None), getattr(config, "hidden_size", None)
    head_dims = {layout.head_dim for layout in layouts}
    if heads and hidden and not hasattr(config, "head_dim") and head_dims and head_dims != {hidden // heads}:
        notes.append(
            f"config cannot describe heads of width {sorted(head_dims)} in a {hidden}-wide stream with {heads} heads "
            "(it derives the head width as hidden_size / num_attention_heads): save with wb.save_shrunk"
        )
    return notes

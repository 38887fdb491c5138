"""Rebuild layers of new sizes: slice a module's tensors, make a standard layer of that shape, update head counts.

A transposed Linear (GPT-2's ``Conv1D``) keeps its class: it gets the sliced tensors and its sizes (``nf``, ``nx``).

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 3))
    >>> resize(model, "0", {"weight": torch.ones(2, 4), "bias": torch.zeros(2)})
    >>> describe(model[0])
    '2×4'
"""

from __future__ import annotations

import torch
from torch import nn

from ..layer_kinds import is_transposed_linear, set_features, weight_dims
from .norms import epsilons_of


def describe(module: nn.Module) -> str | None:
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)) or is_transposed_linear(module):
        return "×".join(map(str, module.weight.shape))
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return f"BN({module.num_features})"
    if isinstance(module, nn.LayerNorm):
        return f"LN{tuple(module.normalized_shape)}"
    if isinstance(module, nn.GroupNorm):
        return f"GN({module.num_groups}×{module.num_channels // module.num_groups})"
    return None


def _slice(tensor: torch.Tensor, dims: dict[int, torch.Tensor]) -> torch.Tensor:
    out = tensor.detach()
    for dim, index in dims.items():
        out = out.index_select(dim, index.to(out.device))
    return out.clone()


def apply_slices(model: nn.Module, slices, bias_deltas) -> None:
    """Replace every touched module by a standard smaller one (other tensors are sliced in place)."""
    by_module: dict[str, dict[str, dict[int, torch.Tensor]]] = {}
    for name, dims in slices.items():
        module_name, _, leaf = name.rpartition(".")
        by_module.setdefault(module_name, {})[leaf] = dims
    for name in bias_deltas:
        by_module.setdefault(name, {})
    for module_name, leaves in by_module.items():
        module = model.get_submodule(module_name)
        tensors = {}
        for leaf, value in list(module._parameters.items()) + list(module._buffers.items()):
            if value is not None:
                tensors[leaf] = _slice(value, leaves[leaf]) if leaf in leaves else value.detach().clone()
        if module_name in bias_deltas:
            delta = bias_deltas[module_name]
            out_dim = weight_dims(module)[0]
            full = (
                module.bias.detach().double()
                if module.bias is not None
                else torch.zeros(module.weight.shape[out_dim], dtype=torch.float64)
            ) + delta.to(torch.float64)
            full = full.to(module.weight.dtype)
            weight_slices = leaves.get("weight", {})
            rows = leaves.get("bias") or ({0: weight_slices[out_dim]} if out_dim in weight_slices else {})
            tensors["bias"] = _slice(full, rows)
        resize(model, module_name, tensors)


def resize(model: nn.Module, module_name: str, tensors: dict[str, torch.Tensor]) -> None:
    """Give module ``module_name`` these parameters and buffers (by leaf name) of new sizes: a standard layer
    is replaced by one of the new sizes, any other module gets the tensors in place."""
    module = model.get_submodule(module_name)
    new = _rebuild(module, tensors)
    if new is not module:
        parent_name, _, child = module_name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, new)
        return
    transposed = is_transposed_linear(module)
    for leaf, value in tensors.items():
        if leaf in module._parameters:
            old = module._parameters[leaf]
            module._parameters[leaf] = nn.Parameter(value, requires_grad=old.requires_grad if old is not None else True)
        else:
            module._buffers[leaf] = value
    if transposed:
        set_features(module)
    weight = module._parameters.get("weight")
    if isinstance(module, nn.Embedding):
        module.embedding_dim = weight.shape[1]
    elif weight is not None and isinstance(getattr(module, "normalized_shape", None), (tuple, list)):
        module.normalized_shape = tuple(weight.shape)  # a LayerNorm/RMSNorm of the model's own class


def tied_parameters(model: nn.Module) -> list[list[str]]:
    """Names that share one parameter (an ``lm_head`` tied to the token embedding), when any."""
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return [group for group in names.values() if len(group) > 1]


def retie(model: nn.Module, tied: list[list[str]], sliced) -> None:
    """Make every name of each ``tied`` group share the parameter again, the sliced one where one was."""
    for names in tied:
        source = next((name for name in names if name in sliced), None)
        if source is None:
            continue
        module_name, _, leaf = source.rpartition(".")
        param = model.get_submodule(module_name)._parameters[leaf]
        for name in names:
            module_name, _, leaf = name.rpartition(".")
            module = model.get_submodule(module_name)
            module._parameters[leaf] = param
            if isinstance(module, nn.Linear) and leaf == "weight":
                module.out_features, module.in_features = param.shape


def rescale_rms_norms(model: nn.Module, widths: dict[str, int]) -> None:
    """Keep RMSNorms over fewer channels exact: weight × sqrt(D/D'), epsilon × D/D' (``widths``: name → D).

    The removed channels were zero, so the mean of squares over D' channels is D/D' times the one over D."""
    for name, width in widths.items():
        module = model.get_submodule(name)
        ratio = width / module.weight.numel()
        if ratio == 1:
            continue
        with torch.no_grad():
            module.weight.mul_(ratio**0.5)
        for attr, value in epsilons_of(module).items():
            setattr(module, attr, value * ratio)


def set_head_count(module: nn.Module, layout, count: int) -> None:
    """Set an attention module's head count, and the attributes that follow it, to ``count`` (query) heads."""
    if layout.heads_attr:
        setattr(module, layout.heads_attr, count)
    if layout.kv_attr:
        setattr(module, layout.kv_attr, count // layout.group_size)
    for attr in layout.widths:
        setattr(module, attr, count * layout.head_dim)


def describe_heads(layout, units: int) -> str:
    """ "2 heads" for ``units`` heads, or with grouped-query attention "4 heads in 2 key/value groups"."""
    count = units * layout.group_size
    text = f"{count} head" + ("s" if count != 1 else "")
    return text + (f" in {units} key/value group" + ("s" if units != 1 else "") if layout.kv_heads else "")


def _rebuild(module: nn.Module, tensors: dict[str, torch.Tensor]) -> nn.Module:
    w = tensors.get("weight")
    kind = type(module)
    if kind is nn.Linear:
        new = nn.Linear(w.shape[1], w.shape[0], bias="bias" in tensors, device="meta")
    elif kind in (nn.Conv1d, nn.Conv2d):
        groups = (
            1 if module.groups == 1 else w.shape[0] // (module.out_channels // module.groups)
        )  # depthwise: one per channel
        new = kind(
            w.shape[1] * groups,
            w.shape[0],
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            groups,
            "bias" in tensors,
            module.padding_mode,
            device="meta",
        )
    elif kind in (nn.BatchNorm1d, nn.BatchNorm2d):
        size = next(t.shape[0] for k, t in tensors.items() if k != "num_batches_tracked")
        new = kind(size, module.eps, module.momentum, module.affine, module.track_running_stats, device="meta")
    elif kind is nn.GroupNorm:
        per_group = module.num_channels // module.num_groups
        new = nn.GroupNorm(w.shape[0] // per_group, w.shape[0], module.eps, module.affine, device="meta")
    elif kind is nn.LayerNorm:
        shape = tensors["weight"].shape if "weight" in tensors else module.normalized_shape
        new = nn.LayerNorm(shape, module.eps, module.elementwise_affine, bias="bias" in tensors, device="meta")
    else:
        return module
    for leaf, value in tensors.items():
        if leaf in module._parameters:
            old = module._parameters[leaf]
            new._parameters[leaf] = nn.Parameter(
                value, requires_grad=old.requires_grad if old is not None else module.weight.requires_grad
            )
        else:
            new._buffers[leaf] = value
    new.train(module.training)
    return new

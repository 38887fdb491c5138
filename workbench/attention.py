"""Attention modules and where they keep their heads: q/k/v rows in ``head_dim`` blocks, out-projection columns.

Separate (``q``/``k``/``v``, ``query``/``key``/``value``, ``q_proj``…) and fused (``qkv``, GPT-2's ``c_attn``)
Linear (or transposed Linear) layouts are recognised by attribute names, so head patterns, dependency groups and
saving agree on one layout. With grouped-query attention (k/v narrower than q, as in Llama) each key/value head
is shared by ``group_size`` consecutive query heads, so the unit that can go is a whole key/value group.

Example:
    >>> import workbench as wb
    >>> layout = attention_layouts(wb.build_model("transformer"))["blocks.0.attn"]
    >>> layout.num_heads, layout.head_dim, layout.out
    (4, 16, 'out')
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layer_kinds import features, is_transposed_linear, weight_dims
from .masks import qualified

HEAD_COUNTS = ("num_heads", "num_attention_heads", "n_heads", "n_head", "heads", "nhead")
KV_HEAD_COUNTS = ("num_key_value_heads", "num_kv_heads", "n_kv_heads")
HEAD_SIZES = ("head_dim", "attention_head_size", "head_size", "d_head", "dim_head")
SEPARATE = (("q", "k", "v"), ("query", "key", "value"), ("q_proj", "k_proj", "v_proj"), ("to_q", "to_k", "to_v"))
FUSED = ("qkv", "to_qkv", "Wqkv", "c_attn")
OUTS = ("out", "out_proj", "proj", "o", "o_proj", "dense", "c_proj", "to_out", "wo")
WIDTHS = ("all_head_size", "inner_dim", "inner_size", "embed_dim", "hidden_size", "dim", "split_size")


@dataclass(frozen=True)
class AttentionLayout:
    """Where an attention module keeps its heads: q/k/v rows in ``head_dim`` blocks, the out columns.

    ``qkv`` lists (child Linear, row offset) for q, k and v: separate layers at offset 0, or one fused
    layer at offsets 0, width, 2·width. ``out`` is None when the heads are read outside the module.
    ``kv_heads`` < ``num_heads`` is grouped-query attention: its units are key/value groups (one k/v
    head and the ``group_size`` query heads reading it), ``units`` of them.
    """

    heads_attr: str | None  # attribute holding the head count (None: the forward infers it from the shapes)
    num_heads: int
    head_dim: int
    qkv: tuple[tuple[str, int], ...]
    out: str | None
    widths: tuple[str, ...] = ()  # int attributes equal to num_heads × head_dim, updated with the head count
    kv_heads: int = 0  # key/value heads (0: as many as query heads)
    kv_attr: str | None = None  # attribute holding the key/value head count, updated with it

    @property
    def width(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def units(self) -> int:
        """Heads that can be removed one by one: key/value groups (= heads without grouped-query attention)."""
        return self.kv_heads or self.num_heads

    @property
    def group_size(self) -> int:
        return self.num_heads // self.units

    def group_ids(self, name: str, module: nn.Module) -> dict[str, torch.Tensor]:
        """Unit ids of the q/k/v weight rows and out weight columns (-1 elsewhere), by state_dict name."""
        ids = {}
        heads = torch.arange(self.width).div(self.head_dim * self.group_size, rounding_mode="floor")
        kv = torch.arange(self.units * self.head_dim).div(self.head_dim, rounding_mode="floor")
        for index, (child, offset) in enumerate(self.qkv):
            layer = getattr(module, child)
            key = qualified(qualified(name, child), "weight")
            ids_of = ids.setdefault(key, torch.full(layer.weight.shape, -1, dtype=torch.long))
            rows = ids_of.movedim(weight_dims(layer)[0], 0)  # a view: (out, in)
            units = heads if index == 0 else kv
            rows[offset : offset + len(units)] = units.view(-1, 1)
        if self.out is not None:
            layer = getattr(module, self.out)
            columns = heads.view(1, -1).expand(features(layer)[1], -1)
            ids[qualified(qualified(name, self.out), "weight")] = columns.movedim(0, weight_dims(layer)[0]).clone()
        return ids


def attention_layout(module: nn.Module) -> AttentionLayout | None:
    """The head layout of an attention module (separate or fused q/k/v Linear layers), or None."""
    heads_attr = next(
        (a for a in HEAD_COUNTS if isinstance(getattr(module, a, None), int) and getattr(module, a) > 0), None
    )
    if heads_attr is None and not isinstance(getattr(module, "head_dim", None), int):
        return None
    children = dict(module.named_children())
    linear = {
        name: features(m) for name, m in children.items() if isinstance(m, nn.Linear) or is_transposed_linear(m)
    }  # name → (in, out)
    separate = next((names for names in SEPARATE if all(n in linear for n in names)), None)
    fused = next((n for n in FUSED if n in linear), None)
    kv_width = 0
    if separate:
        width, kv_width = linear[separate[0]][1], linear[separate[1]][1]
        qkv = tuple((n, 0) for n in separate)
        if linear[separate[2]][1] != kv_width or not 0 < kv_width <= width:
            return None
    elif fused and linear[fused][1] % 3 == 0:
        width = linear[fused][1] // 3
        qkv = ((fused, 0), (fused, width), (fused, 2 * width))
    else:
        return None
    head_dim = next((getattr(module, a) for a in HEAD_SIZES if isinstance(getattr(module, a, None), int)), None)
    num_heads = getattr(module, heads_attr) if heads_attr else width // head_dim if head_dim else 0
    head_dim = head_dim or width // max(num_heads, 1)
    if head_dim < 1 or num_heads * head_dim != width:
        return None
    kv_heads, kv_attr = 0, None
    if kv_width and kv_width != width:  # grouped-query attention: whole key/value groups are the units
        kv_heads = kv_width // head_dim
        if kv_heads * head_dim != kv_width or num_heads % kv_heads:
            return None
        kv_attr = next((a for a in KV_HEAD_COUNTS if getattr(module, a, None) == kv_heads), None)
    out = next((n for n in OUTS if n in linear and linear[n][0] == width), None)
    widths = tuple(
        a
        for a in WIDTHS
        if a not in (heads_attr,) and getattr(module, a, None) == width and type(getattr(module, a)) is int
    )
    return AttentionLayout(heads_attr, num_heads, head_dim, qkv, out, widths, kv_heads, kv_attr)


def attention_layouts(model: nn.Module) -> dict[str, AttentionLayout]:
    """The head layout of every attention module of ``model`` (see ``attention_layout``), by module name."""
    found = {}
    for name, module in model.named_modules():
        layout = attention_layout(module)
        if layout is not None:
            found[name] = layout
    return found

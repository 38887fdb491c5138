"""Save a shrunk model as a plain state_dict plus a JSON of what rebuilds it; load it back exactly.

A shrunk model has layers of sizes no config describes, so the JSON records the architecture to start
from (a workbench model's name and config, or nothing for a user's model, who passes a freshly built
``template``) and every attention module's head count. Loading rebuilds each layer whose saved tensors
differ in shape as a standard layer of the saved sizes, then loads the state_dict strictly.

Example:
    >>> import tempfile, torch, workbench as wb
    >>> small = wb.shrink(wb.pretrained("transformer"), sparsity=0.5, pattern="head")
    >>> path = tempfile.mkdtemp() + "/small.pt"
    >>> save_shrunk(small, path)
    >>> again = load_shrunk(path)
    >>> x = torch.randn(2, 1, 8, 8)
    >>> torch.equal(again(x), small.eval()(x)), again.blocks[0].attn.num_heads
    (True, 2)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..attention import attention_layouts
from ..masks import qualified
from ..models import MODELS, build_model, config_to_dict
from .shrink import resize, set_head_count


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def check_path(path) -> Path:
    """``path`` as a Path, or a ValueError when its .json twin would overwrite it."""
    path = Path(path)
    if path.suffix == ".json":
        raise ValueError(f"{path} would be overwritten by its .json twin; use e.g. {path.with_suffix('.pt')}")
    return path


def save_shrunk(model: nn.Module, path, extra: dict | None = None) -> None:
    """Write ``model``'s state_dict to ``path`` and what rebuilds it to ``path`` with suffix .json."""
    path = check_path(path)
    config = getattr(model, "config", None)
    name = next(
        (
            spec.name
            for spec in MODELS.values()
            if isinstance(config, spec.config_class) and isinstance(model, spec.build)
        ),
        None,
    )
    meta = {
        "model": name,
        "config": config_to_dict(config) if name else None,
        "heads": {name: layout.num_heads for name, layout in attention_layouts(model).items()},
        "parameters": sum(p.numel() for p in model.parameters()),
        **(extra or {}),
    }
    torch.save(model.state_dict(), path)
    _meta_path(path).write_text(json.dumps(meta, indent=1))


def load_shrunk(path, template: nn.Module | None = None) -> nn.Module:
    """The model ``save_shrunk`` wrote, rebuilt at its saved sizes, in eval mode.

    Args:
        path: the state_dict file (its .json twin must sit beside it).
        template: a freshly built model of the original architecture; needed for models that are not
            workbench's own (their JSON names no model). It is resized in place and returned.
    """
    path = Path(path)
    try:
        meta = json.loads(_meta_path(path).read_text())
        state = torch.load(path, weights_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise ValueError(f"cannot read a shrunk model from {path} and {_meta_path(path).name}: {error}") from None
    if template is None:
        if not meta.get("model"):
            raise ValueError(
                f"{path} holds a user's model: pass template=<a freshly built model of the original architecture>"
            )
        template = build_model(meta["model"], meta["config"])
    model, layouts = template, attention_layouts(template)
    for module_name, module in list(model.named_modules()):
        own = {
            leaf: state[key]
            for leaf in [*module._parameters, *module._buffers]
            if (key := qualified(module_name, leaf)) in state
        }  # includes biases a shrink added
        if any(
            getattr(module, leaf) is None or value.shape != getattr(module, leaf).shape for leaf, value in own.items()
        ):
            resize(model, module_name, own)
    for module_name, count in meta.get("heads", {}).items():
        if module_name not in layouts:
            raise ValueError(
                f"{path} has heads in {module_name!r}, which is no attention module of the template {type(model).__name__}"
            )
        set_head_count(model.get_submodule(module_name), layouts[module_name], count)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"{path} does not fit the template {type(model).__name__}: {str(error).splitlines()[0]}"
        ) from None
    return model.eval()

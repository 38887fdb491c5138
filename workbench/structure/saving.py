"""Save a shrunk model as a plain state_dict plus a JSON of what rebuilds it; load it back exactly.

A shrunk model has layers of sizes no config describes, so the JSON records the architecture to start
from (a workbench model's name and config, or nothing for a user's model, who passes a freshly built
``template``), every attention module's head count and a SHA-256 checksum of the weights. Loading
checks the checksum, rebuilds each layer whose saved tensors differ in shape as a standard layer of
the saved sizes, then loads the state_dict strictly. A bad file raises a one-line ValueError.

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

import copy
import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..attention import attention_layouts
from ..masks import qualified
from ..models import MODELS, build_model, config_to_dict
from .configs import update_config
from .norms import EPS_ATTRIBUTES, epsilons_of
from .rebuild import resize, retie, set_head_count, tied_parameters

CHECKSUM = "weights_sha256"  # the .json key of the weights' checksum


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def check_path(path) -> Path:
    """``path`` as a Path, or a ValueError when a shrunk model cannot be saved there."""
    path = Path(path)
    if path.suffix == ".json":
        raise ValueError(f"{path} would be overwritten by its .json twin; use e.g. {path.with_suffix('.pt')}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; name a file in it, e.g. {path / 'model.pt'}")
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent} does not exist; create that folder first, or save elsewhere")
    return path


def registry_name(model: nn.Module) -> str | None:
    """The ``MODELS`` name of a workbench model (its class and config say which), or None for a user's model."""
    config = getattr(model, "config", None)
    return next(
        (
            spec.name
            for spec in MODELS.values()
            if isinstance(config, spec.config_class) and isinstance(model, spec.build)
        ),
        None,
    )


def save_shrunk(model: nn.Module, path, extra: dict | None = None) -> None:
    """Write ``model``'s state_dict to ``path`` and what rebuilds it to ``path`` with suffix .json."""
    path = check_path(path)
    config = getattr(model, "config", None)
    name = registry_name(model)
    state = model.state_dict()
    meta = {
        "model": name,
        "config": config_to_dict(config) if name else None,
        "heads": {name: layout.num_heads for name, layout in attention_layouts(model).items()},
        "epsilons": epsilons(model),
        "parameters": sum(p.numel() for p in model.parameters()),
        **(extra or {}),
        CHECKSUM: checksum(state),
    }
    text = json.dumps(meta, indent=1)  # before writing anything: an ``extra`` that is not JSON writes nothing
    try:
        with path.open("wb") as file:
            torch.save(state, file)
        _meta_path(path).write_text(text)
    except OSError as error:
        raise ValueError(f"{error.filename or path} cannot be written: {os_error_reason(error)}") from None


def load_shrunk(path, template: nn.Module | None = None) -> nn.Module:
    """The model ``save_shrunk`` wrote, rebuilt at its saved sizes, in eval mode.

    A file that is missing, damaged, changed since saving (its checksum differs) or of another model
    raises a one-line ValueError naming the file and what is wrong. Only tensors are ever unpickled.

    Args:
        path: the state_dict file (its .json twin must sit beside it).
        template: a freshly built model of the original architecture; needed for models that are not
            workbench's own (their JSON names no model). It is left as it is: a resized copy is returned.
    """
    path = Path(path)
    state = _read_weights(path)
    meta = _read_meta(path)
    expected = meta.get(CHECKSUM)  # files saved before checksums existed have none
    if expected is not None and expected != checksum(state):
        raise ValueError(
            f"{path} does not match the checksum in {_meta_path(path).name}: "
            "its weights were changed or damaged after saving"
        )
    if template is None:
        if not meta.get("model"):
            raise ValueError(
                f"{path} holds a user's model: pass template=<a freshly built model of the original architecture>"
            )
        try:
            model = build_model(meta["model"], meta.get("config"))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{_meta_path(path)} describes a model that cannot be built: {error}") from None
        what = f"the {meta['model']} model {_meta_path(path).name} describes"
    else:
        model = copy.deepcopy(template)
        what = f"the template {type(template).__name__}"
    tied = tied_parameters(model)
    resize_to_state(model, state, meta.get("heads", {}), path, what)
    retie(model, tied, state)
    if why := misfit(model, state):
        raise ValueError(f"{path} does not fit {what}: {why}")
    set_epsilons(model, meta.get("epsilons", {}), path, what)
    model.load_state_dict(state)
    if template is not None:  # a user's (Hugging Face) config follows the saved shapes, as after the shrink
        update_config(model, template)
    return model.eval()


def epsilons(model: nn.Module) -> dict[str, dict[str, float]]:
    """The normalizations' epsilons by module (a shrink rescales an RMSNorm's; the state_dict lacks them)."""
    return {name: values for name, module in model.named_modules() if (values := epsilons_of(module))}


def set_epsilons(model: nn.Module, saved: dict, path: Path, what: str) -> None:
    for name, values in saved.items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"{path} does not fit {what}: it has an epsilon for {name!r}, no module there") from None
        for attr, value in values.items():
            if attr not in EPS_ATTRIBUTES or not isinstance(value, (int, float)):
                raise ValueError(f"{path} has a bad epsilon {attr}={value!r} for {name!r}")
            setattr(module, attr, float(value))


def checksum(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order.

    Example:
        >>> checksum({"w": torch.zeros(2)}) == checksum({"w": torch.zeros(2)}) != checksum({"w": torch.ones(2)})
        True
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        data = tensor.reshape(-1).view(torch.uint8).numpy()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0{data.size}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state_dict in ``path``, or a ValueError saying what is wrong with the file."""
    try:
        with path.open("rb") as file:
            head = file.read(4)
    except OSError as error:
        raise ValueError(f"{path} cannot be read: {os_error_reason(error)}") from None
    if not head:
        raise ValueError(f"{path} is empty: it holds no weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # on bytes it cannot parse torch raises UnpicklingError, EOFError, KeyError, OSError, …
        raise ValueError(f"{path} {_unloadable(path, head, error)}") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state_dict (a dict of named tensors)")
    return state


def _unloadable(path: Path, head: bytes, error: Exception) -> str:
    """What is wrong with a weights file ``torch.load`` refused (``head``: its first bytes)."""
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK"):
            return "is truncated or damaged: its zip archive is incomplete"
        return "is not a PyTorch weights file, or is damaged"
    if isinstance(error, pickle.UnpicklingError):
        return "holds objects other than tensors (which are never loaded), or is damaged"
    return "is a zip archive but no PyTorch weights file, or is damaged"


def _read_meta(path: Path) -> dict:
    """The JSON twin of ``path``, or a ValueError saying what is wrong with it."""
    meta_path = _meta_path(path)
    try:
        meta = json.loads(meta_path.read_text())
    except OSError as error:
        why = f"cannot be read: {os_error_reason(error)}"
        raise ValueError(f"{meta_path} {why} (save_shrunk writes it beside {path.name} to rebuild the model)") from None
    except UnicodeDecodeError:
        raise ValueError(f"{meta_path} is not JSON: it is not text") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{meta_path} is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path} holds a JSON {type(meta).__name__}, not the object save_shrunk writes")
    return meta


def resize_to_state(
    model: nn.Module, state: dict[str, torch.Tensor], heads: dict[str, int], path: Path, what: str
) -> None:
    """Rebuild each layer of ``model`` whose saved tensors differ in shape, and set the saved head counts."""
    layouts = attention_layouts(model)
    for module_name, module in list(model.named_modules()):
        own = {
            leaf: state[key]
            for leaf in [*module._parameters, *module._buffers]
            if (key := qualified(module_name, leaf)) in state
        }  # includes biases a shrink added
        if any(
            getattr(module, leaf) is None or value.shape != getattr(module, leaf).shape for leaf, value in own.items()
        ):
            try:
                resize(model, module_name, own)
            except (AttributeError, IndexError, RuntimeError, TypeError, ValueError):
                raise ValueError(
                    f"{path} does not fit {what}: module {module_name!r} cannot be rebuilt from its saved tensors"
                ) from None
    for module_name, count in heads.items():
        if module_name not in layouts:
            raise ValueError(f"{path} has heads in {module_name!r}, which is no attention module of {what}")
        set_head_count(model.get_submodule(module_name), layouts[module_name], count)


def misfit(model: nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """Why ``state`` does not load into ``model`` (names or shapes), or None when it does."""
    expected = model.state_dict()
    missing, extra = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or extra:
        lacks = f"the file lacks {_some(missing)}" if missing else ""
        has = f"the file has {_some(extra)} the model has no place for" if extra else ""
        return " and ".join(filter(None, (lacks, has)))
    name = next((n for n in expected if expected[n].shape != state[n].shape), None)
    if name is None:
        return None
    return f"{name} is {tuple(state[name].shape)} in the file but {tuple(expected[name].shape)} in the model"


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{len(names)} tensor{'s' if len(names) > 1 else ''} ({shown})"


def os_error_reason(error: OSError) -> str:
    return (error.strerror or type(error).__name__).lower()

"""The model zoo of shipped checkpoints: load them safely (`pretrained`), and regenerate them deterministically
(`train_checkpoint`).

Each checkpoint is two files in ``workbench/checkpoints/``: ``NAME.pt`` (a plain state_dict,
loaded with ``weights_only=True``) and ``NAME.json`` (model config, dataset, recipe, test accuracy).

Example:
    >>> import workbench as wb
    >>> model = wb.pretrained("mlp")
    >>> model.training
    False
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from .data import load_dataset
from .gradual import GradualPruner
from .masks import bake
from .models import build_model, config_from_dict, config_to_dict, count_parameters, model_spec
from .reports import check_sparsity, sparsity_report
from .schedules import schedule as make_schedule
from .train import evaluate, train


@dataclass(frozen=True)
class Recipe:
    """How a shipped checkpoint is trained."""

    epochs: int
    lr: float
    weight_decay: float = 1e-4
    batch_size: int = 64
    seed: int = 0
    shift_augment: int = 0  # random translation of images (or signals) by up to this many pixels (samples)


RECIPES: dict[str, Recipe] = {
    "mlp": Recipe(epochs=60, lr=2e-3, weight_decay=1e-2, batch_size=128, shift_augment=1),
    "cnn": Recipe(epochs=30, lr=3e-3, shift_augment=1),
    "transformer": Recipe(epochs=150, lr=3e-3, weight_decay=0.05, shift_augment=1),
    "mlp2d": Recipe(epochs=150, lr=1e-2, batch_size=32),
    "mlp1d": Recipe(epochs=100, lr=5e-3, weight_decay=1e-2, batch_size=64, shift_augment=3),
    "cnn1d": Recipe(epochs=100, lr=5e-3, batch_size=100),
}


def checkpoint_dir() -> Path:
    """The folder of the shipped checkpoints inside the installed package."""
    return Path(str(resources.files("workbench") / "checkpoints"))


def checkpoint_info(name: str, directory: Path | str | None = None) -> dict:
    """The metadata of a shipped checkpoint (config, dataset, recipe, test accuracy, parameters)."""
    model_spec(name)
    path = Path(directory or checkpoint_dir()) / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no checkpoint metadata for {name!r} at {path}; run `workbench train {name}`") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"checkpoint metadata {path} is not valid JSON: {error}") from None


def pretrained(name: str, directory: Path | str | None = None) -> nn.Module:
    """The shipped trained model ``name``, on the CPU, in eval mode.

    Raises ValueError naming the file when it is missing, corrupt, or does not fit the model.

    Example:
        >>> import workbench as wb
        >>> wb.pretrained("cnn").fc.out_features
        10
    """
    directory = Path(directory) if directory is not None else None
    info = checkpoint_info(name, directory)
    meta_path = (directory or checkpoint_dir()) / f"{name}.json"
    try:
        model = build_model(name, config_from_dict(name, info["config"]))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"checkpoint metadata {meta_path} has no valid 'config' for {name!r}: {error}") from None
    path = (directory or checkpoint_dir()) / f"{name}.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"checkpoint file {path} is missing; run `workbench train {name}`") from None
    except Exception as error:  # unpickling errors come in many types
        raise ValueError(f"checkpoint file {path} could not be read ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint file {path} holds a {type(state).__name__}, expected a state_dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"checkpoint file {path} does not fit model {name!r}: {error}") from None
    return model.eval()


def shift_augment(max_shift: int):
    """A batch augmentation translating each sample by up to ``max_shift`` steps: images (N, C, H, W) in both
    directions with background padding (the batch minimum), signals (N, C, L) along time with edge padding."""

    def augment(inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if inputs.dim() == 3:
            return _shift_signals(inputs, max_shift, generator)
        padded = torch.nn.functional.pad(inputs, (max_shift,) * 4, value=inputs.min().item())
        height, width = inputs.shape[-2:]
        offsets = torch.randint(0, 2 * max_shift + 1, (len(inputs), 2), generator=generator)
        shifted = torch.empty_like(inputs)
        for dy, dx in offsets.unique(dim=0).tolist():
            rows = ((offsets[:, 0] == dy) & (offsets[:, 1] == dx)).nonzero().squeeze(1)
            shifted[rows] = padded[rows, ..., dy : dy + height, dx : dx + width]
        return shifted

    return augment


def _shift_signals(signals: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    padded = torch.nn.functional.pad(signals, (max_shift, max_shift), mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (len(signals),), generator=generator)
    index = offsets.view(-1, 1, 1) + torch.arange(signals.shape[-1]).view(1, 1, -1)
    return padded.gather(2, index.expand(-1, signals.shape[1], -1))


def train_checkpoint(
    name: str,
    directory: Path | None = None,
    progress: bool = True,
    epochs: int | None = None,
    prune_to: float | None = None,
    schedule: str = "cubic",
) -> dict:
    """Train model ``name`` with its recipe on CPU and write ``NAME.pt`` + ``NAME.json``; returns the metadata.

    The same seed and machine give the same weights, so the shipped files can be regenerated.
    ``prune_to`` trains it sparse instead: a ``GradualPruner`` (global magnitude) raises the sparsity on
    ``schedule`` over the first three quarters of the steps; the masks are baked into the saved weights.
    """
    spec = model_spec(name)
    recipe = RECIPES[name]
    if epochs is not None:
        recipe = Recipe(**{**asdict(recipe), "epochs": epochs})
    data = load_dataset(spec.dataset, seed=recipe.seed)
    torch.manual_seed(recipe.seed)
    model = build_model(name, num_classes=data.num_classes)
    pruner = None
    if prune_to is not None:
        steps = recipe.epochs * -(-len(data.train) // recipe.batch_size)
        plan = make_schedule(schedule, 0.0, check_sparsity(prune_to), 0, int(0.75 * steps), max(1, steps // 40))
        pruner = GradualPruner(model, plan)
    history = train(
        model,
        data,
        epochs=recipe.epochs,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        batch_size=recipe.batch_size,
        seed=recipe.seed,
        device="cpu",
        progress=progress,
        augment=shift_augment(recipe.shift_augment) if recipe.shift_augment else None,
        pruner=pruner,
    )
    bake(model)
    info = {
        "model": name,
        "config": config_to_dict(model.config),
        "dataset": spec.dataset,
        "recipe": asdict(recipe),
        "parameters": count_parameters(model),
        "val_accuracy": history.val_accuracy[-1] if history.val_accuracy else None,
        "test_accuracy": evaluate(model, data.test),
        "torch_version": torch.__version__,
        **({"pruned": {"sparsity": sparsity_report(model).sparsity, "schedule": schedule}} if pruner else {}),
    }
    directory = directory or checkpoint_dir()
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / f"{name}.pt")
    (directory / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    return info

"""The criterion registry: one ``register`` call makes a criterion available everywhere.

``wb.prune``, ``wb.Pruner``, ``wb.shrink`` and group pruning, every widget dropdown and the CLI's
``--criterion`` read ``CRITERIA``. A criterion is ``fn(model, names, data, **options) -> {weight name:
scores shaped like the weight}`` (higher = more important = kept longer), declared with what it scores
(single ``"elements"``, or output ``"units"`` whose weights all carry the unit's score) and what it needs
(data; a BatchNorm after each scored layer). Its options are the keyword parameters of ``fn``; any
other option is an error naming the allowed ones. A criterion whose scores build up while the weights
train (SNIP-momentum, movement) also gives ``update(previous, weight, gradient) -> score``, which
``GradualPruner`` calls after every optimizer step.

Example:
    >>> @register("negative_magnitude", needs_data=False, description="−|w|: prunes the largest weights first")
    ... def negative_magnitude(model, names, data):
    ...     return {name: -model.get_parameter(name).detach().abs() for name in names}
    >>> import workbench as wb
    >>> result = wb.prune(wb.pretrained("mlp"), sparsity=0.5, criterion="negative_magnitude")
    >>> CRITERIA["magnitude"].check_options({"seed": 1})
    Traceback (most recent call last):
    ...
    ValueError: criterion 'magnitude' takes no option 'seed'; it takes no options
    >>> del CRITERIA["negative_magnitude"]
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

Scores = dict[str, torch.Tensor]
Update = Callable[[torch.Tensor | None, torch.Tensor, torch.Tensor], torch.Tensor]
SCORED_UNITS = ("elements", "units")
REDUCTIONS = ("l2", "sum", "mean")


@dataclass(frozen=True)
class Criterion:
    """A registered criterion: its function, what it scores and needs, and the options it takes."""

    name: str
    fn: Callable[..., Scores]  # fn(model, names, data, **options) -> scores shaped like the weights
    needs_data: bool
    description: str
    scores: str = "elements"  # "elements", or "units": every weight of an output unit gets the unit's score
    needs_batchnorm: bool = False  # scores the BatchNorm γ after each layer (of each dependency group)
    reduce: str | None = None  # its own group reduction ("sum": L1 norm, "l2"); None: the pruner's default
    options: tuple[str, ...] = ()  # keyword options of fn
    unscorable_fn: Callable[[nn.Module, list[str]], dict[str, str]] | None = None  # layers it cannot score, and why
    update: Update | None = None  # train-time: new score from (previous score or None, weight, gradient) each step

    def unscorable(self, model: nn.Module, layer_names: list[str]) -> dict[str, str]:
        """Layers (module names) of ``model`` this criterion cannot score, with why (e.g. no BatchNorm after it)."""
        return self.unscorable_fn(model, layer_names) if self.unscorable_fn else {}

    def check_options(self, options: dict) -> None:
        """ValueError naming the allowed options when ``options`` has one ``fn`` does not take."""
        for key in options:
            if key not in self.options:
                allowed = f"its options are: {', '.join(self.options)}" if self.options else "it takes no options"
                raise ValueError(f"criterion {self.name!r} takes no option {key!r}; {allowed}")

    def accepted(self, options: dict) -> dict:
        """The subset of ``options`` this criterion takes (for views that offer one budget to every criterion)."""
        return {key: value for key, value in options.items() if key in self.options}

    def score(self, model: nn.Module, names: list[str], data=None, **options) -> Scores:
        """Scores of the weights ``names`` (state_dict names), after checking data and options."""
        self.check_options(options)
        if self.needs_data and data is None:
            raise ValueError(
                f"criterion {self.name!r} scores with data: pass data=<DatasetSplits, Dataset, DataLoader "
                "or (inputs, labels)>"
            )
        return self.fn(model, names, data, **options)


CRITERIA: dict[str, Criterion] = {}


def _options_of(name: str, fn: Callable) -> tuple[str, ...]:
    parameters = list(inspect.signature(fn).parameters.values())
    if len(parameters) < 3 or any(p.kind is p.VAR_POSITIONAL for p in parameters[:3]):
        raise ValueError(f"criterion {name!r}: fn must take (model, names, data, **options by name)")
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        raise ValueError(
            f"criterion {name!r}: name each option as a keyword parameter (no **kwargs), so that "
            "unknown options can be refused"
        )
    return tuple(p.name for p in parameters[3:])


def register(
    name: str,
    needs_data: bool,
    description: str,
    *,
    scores: str = "elements",
    needs_batchnorm: bool = False,
    reduce: str | None = None,
    unscorable: Callable[[nn.Module, list[str]], dict[str, str]] | None = None,
    update: Update | None = None,
):
    """Decorator adding ``fn(model, names, data, **options)`` to ``CRITERIA`` (replacing one of that name)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a criterion name is an identifier such as 'my_score', got {name!r}")
    if scores not in SCORED_UNITS:
        raise ValueError(f"scores must be one of {', '.join(SCORED_UNITS)}, got {scores!r}")
    if reduce not in (None, *REDUCTIONS):
        raise ValueError(f"reduce must be None or one of {', '.join(REDUCTIONS)}, got {reduce!r}")

    def wrap(fn):
        options = _options_of(name, fn)
        CRITERIA[name] = Criterion(
            name, fn, needs_data, description, scores, needs_batchnorm, reduce, options, unscorable, update
        )
        return fn

    return wrap


def get_criterion(name: str) -> Criterion:
    if not isinstance(name, str) or name not in CRITERIA:
        raise ValueError(f"unknown criterion {name!r}; choose one of {', '.join(CRITERIA)}")
    return CRITERIA[name]

"""Golden masks: a fingerprint of every criterion × pattern × scope on the shipped models.

Recorded once with ``python tests/golden_masks.py`` (writes ``tests/golden/masks.json``); the test
``test_golden_masks.py`` recomputes the fingerprints and compares, so a refactor that changes any mask
(or any error) fails.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

import workbench as wb
from workbench.criteria import get_criterion
from workbench.layers import prunable_layers
from workbench.structure.group_prune import GroupPruner

GOLDEN = Path(__file__).parent / "golden" / "masks.json"
MODELS = ("mlp", "cnn", "transformer")
CRITERIA = (
    "magnitude",
    "random",
    "taylor",
    "snip",
    "snip_momentum",
    "obd",
    "synflow",
    "apoz",
    "mean_activation",
    "bn_scale",
    "fpgm",
)
PATTERNS = ("unstructured", "2:4", "block1x4", "block4x4", "kernel", "neuron", "filter", "channel", "head")
SCOPES = ("local", "global")
SPARSITIES = (0.3, 0.7)
GROUP_CRITERIA = ("l1", "l2", "magnitude", "bn_scale", "fpgm", "random", "apoz")
GROUP_PATTERNS = ("filter", "head", None)
# Raw scores, as before global structured pruning defaulted to LAMP; the recorded masks are about that.
PRUNER_OPTIONS = {"normalize": None}


def fingerprint(masks: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(masks):
        digest.update(name.encode())
        digest.update(masks[name].cpu().to(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _error(error: Exception) -> str:
    return f"error: {type(error).__name__}"


def _scores(model, criterion: str, names: list[str], data) -> dict[str, torch.Tensor] | None:
    """Element scores of every prunable weight, computed once for all patterns and scopes (a data-driven
    criterion's gradients or activations do not depend on the pattern); None for "random", whose draws do, and
    where the criterion refuses the model."""
    if criterion == "random":
        return None
    try:
        return get_criterion(criterion).score(model, [f"{name}.weight" for name in names], data)
    except ValueError:  # the criterion does not apply to this model: each pruner raises it as recorded
        return None


def compute(models=MODELS, criteria=CRITERIA, group_criteria=GROUP_CRITERIA) -> dict[str, str]:
    """{"model/criterion/pattern/scope/sparsity": fingerprint or "error: ..."} for Pruner and GroupPruner."""
    data = wb.load_dataset("digits")
    result = {}
    for model_name in models:
        model = wb.pretrained(model_name)
        names = list(prunable_layers(model))
        for criterion in criteria:
            scores = _scores(model, criterion, names, data.train)
            for pattern in PATTERNS:
                for scope in SCOPES:
                    key = f"{model_name}/{criterion}/{pattern}/{scope}"
                    try:
                        pruner = wb.Pruner(
                            model, criterion, pattern, scope, data=data.train, scores=scores, **PRUNER_OPTIONS
                        )
                    except ValueError as error:
                        result[key] = _error(error)
                        continue
                    fixed = pruner.pattern.fixed_sparsity
                    for sparsity in [fixed] if fixed is not None else SPARSITIES:
                        try:
                            masks = pruner.masks(None if fixed is not None else sparsity)
                            result[f"{key}/{sparsity:g}"] = fingerprint(masks)
                        except ValueError as error:
                            result[f"{key}/{sparsity:g}"] = _error(error)
        for criterion in group_criteria:
            for pattern in GROUP_PATTERNS:
                try:  # scores and the traced graph do not depend on the scope: one pruner serves both
                    pruner = GroupPruner(model, criterion, pattern=pattern, data=data.train)
                except ValueError as error:
                    result.update(
                        {f"{model_name}/group:{criterion}/{pattern}/{scope}": _error(error) for scope in SCOPES}
                    )
                    continue
                for scope in SCOPES:
                    key = f"{model_name}/group:{criterion}/{pattern}/{scope}"
                    pruner.scope = scope
                    for sparsity in SPARSITIES:
                        try:
                            result[f"{key}/{sparsity:g}"] = fingerprint(pruner.masks(sparsity))
                        except ValueError as error:
                            result[f"{key}/{sparsity:g}"] = _error(error)
    return result


if __name__ == "__main__":
    torch.set_num_threads(2)
    values = compute()
    GOLDEN.write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(values)} fingerprints to {GOLDEN}", file=sys.stderr)

"""How much of the models users bring ``wb.shrink`` removes at 50 %, beside Torch-Pruning (DepGraph).

Hugging Face ``transformers`` models built from small configs (random weights, eval mode, no download)
and a small squeeze-and-excitation net. For each: the fraction of parameters removed by workbench
(every prunable dependency group, L1 scores), exactly (the default) and with ``exact=False`` (LayerNorm'd
widths too), by Torch-Pruning's ``MetaPruner`` (L1 importance, the classifier kept, given 90 s), whether
the exact shrink computes what the group-masked model computes, and the seconds of each workbench shrink
(trace + group + score + shrink, cold: the first export of each model).

Then the warm time of ``wb.shrink`` (trace + group + shrink) on the shipped models.

Run: .venv/bin/python benchmarks/user_models.py  (needs transformers and torch-pruning; about a minute)
"""

from __future__ import annotations

import copy
import signal
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import workbench as wb
from workbench.masks import apply_masks
from workbench.structure.group_prune import GroupPruner
from workbench.structure.shrink import shrink_masked

SPARSITY = 0.5
TP_SECONDS = 90  # Torch-Pruning does not finish on the Llama in this time


class SqueezeExcitation(nn.Module):
    """A conv, a squeeze-and-excitation gate over its channels, then a conv and a classifier."""

    def __init__(self, width=32, squeezed=8, classes=10):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width)
        self.fc1, self.fc2 = nn.Conv2d(width, squeezed, 1), nn.Conv2d(squeezed, width, 1)
        self.out, self.head = nn.Conv2d(width, width, 3, padding=1), nn.Linear(width, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return self.head(F.relu(self.out(x * gate)).mean((2, 3)))


def cases():
    """(name, model, a batch to trace with, a batch to compare on, the layer Torch-Pruning keeps), seeded.

    The Hugging Face models are the tests' own (``tests/hf_models.py``), with the key/value cache off."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import hf_models

    images, tokens = hf_models.images, hf_models.tokens
    rows = []
    for name, build, batch, keep in (
        ("ConvNeXt", hf_models.convnext, images, "classifier"),
        ("ViT", hf_models.vit, images, "classifier"),
        ("BERT", hf_models.bert, tokens, "classifier"),
        ("MobileNetV2", hf_models.mobilenet_v2, images, "classifier"),
        ("GPT-2", hf_models.gpt2, tokens, "lm_head"),
        ("Llama (GQA)", hf_models.llama, tokens, "lm_head"),
    ):
        model = build()
        model.config.use_cache = False  # Torch-Pruning traces tensor outputs only
        rows.append((name, model, batch(4), batch(8), keep))
    torch.manual_seed(0)
    squeeze = SqueezeExcitation().eval()
    return [*rows, ("squeeze-excitation", squeeze, *(torch.randn(n, 3, 16, 16) for n in (4, 8)), "head")]


def logits(model, x):
    with torch.no_grad():
        out = model(x)
    return out.logits if hasattr(out, "logits") else out


def workbench_row(model, inputs, check, exact=True):
    """Fraction removed, whether the shrunk model equals the masked one on ``check`` (None when not exact), seconds."""
    start = time.perf_counter()
    try:
        pruner = GroupPruner(model, "l1", (inputs,), exact=exact)
    except ValueError:  # no prunable groups
        return 0.0, True, time.perf_counter() - start
    masked = copy.deepcopy(model)
    apply_masks(masked, pruner.masks(SPARSITY))
    small, report = shrink_masked(masked, example_inputs=(inputs,), graph=pruner.graph)
    seconds = time.perf_counter() - start
    expected, got = logits(masked, check), logits(small, check)
    same = got.shape == expected.shape and bool(torch.allclose(got, expected, rtol=1e-4, atol=1e-5))
    return 1 - report.params_after / report.params_before, same if not report.changed else None, seconds


class TimedOut(Exception):
    pass


def within(seconds, run, *args):
    """``run(*args)``, or ``TimedOut`` after ``seconds`` of wall time."""

    def stop(signum, frame):
        raise TimedOut

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return run(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def torch_pruning_fraction(model, inputs, keep):
    import torch_pruning as tp

    model = copy.deepcopy(model)
    before = sum(p.numel() for p in model.parameters())
    pruner = tp.pruner.MetaPruner(
        model,
        inputs,
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=SPARSITY,
        ignored_layers=[model.get_submodule(keep)],
    )
    pruner.step()
    return 1 - sum(p.numel() for p in model.parameters()) / before


def main():
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, fraction of parameters removed at {SPARSITY:.0%} (L1)")
    print(
        f"{'model':<20} {'exact':>6} {'exact=False':>11} {'Torch-Pruning':>13} {'exact equals masked':>19} "
        f"{'s (exact)':>9} {'s (False)':>9}"
    )
    for name, model, inputs, check, keep in cases():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fraction, same, seconds = workbench_row(model, inputs, check)
            loose, _, loose_seconds = workbench_row(model, inputs, check, exact=False)
            try:
                reference = f"{within(TP_SECONDS, torch_pruning_fraction, model, inputs, keep):.3f}"
            except TimedOut:
                reference = f"> {TP_SECONDS} s"
            except Exception as error:  # Torch-Pruning fails on some architectures
                reference = f"fails ({type(error).__name__})"
        print(
            f"{name:<20} {fraction:>6.3f} {loose:>11.3f} {reference:>13} {'yes' if same else 'NO':>19} "
            f"{seconds:>9.1f} {loose_seconds:>9.1f}"
        )
    print(f"(workbench {wb.__version__})")
    print("\nwarm wb.shrink (trace + group + shrink) of the shipped models at 50 %, median of 5:")
    for name, pattern in (("mlp", "filter"), ("cnn", "filter"), ("transformer", "head"), ("transformer", "neuron")):
        print(f"{name:<12} {pattern:<7} {warm_shrink_seconds(name, pattern):.3f} s")


def warm_shrink_seconds(name: str, pattern: str, repeats: int = 5) -> float:
    """Median seconds of ``wb.shrink`` on a shipped model once torch.export has warmed up."""
    model = wb.pretrained(name)
    wb.shrink(model, sparsity=SPARSITY, pattern=pattern)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        wb.shrink(model, sparsity=SPARSITY, pattern=pattern)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()

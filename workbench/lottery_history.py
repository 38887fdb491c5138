"""What a lottery-ticket run found, kept: per round the ticket's masks and the accuracies of the ticket and controls.

A ``LotteryHistory`` draws its curves, saves to and loads from a file read with ``torch.load(weights_only=True)``
(no pickled code), and turns into a ``Recording`` (one frame per round) for the over-time replay.

Example:
    >>> import torch
    >>> kept = {"fc.weight": torch.tensor([[True, False], [True, True]])}
    >>> history = LotteryHistory("demo", 0.25, 0, "local", 0.9, 0.88)
    >>> history.rounds.append(LotteryRound(1, 0.25, kept, {r: 0.9 for r in RUNS}, {r: 0.87 for r in RUNS}, 1.0))
    >>> history.recording().frames[-1].sparsity, history.recording().unit
    (0.25, 'round')
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .recording import BINS, Frame, Recording
from .reports import check_choice
from .schedules import schedule

RUNS = ("ticket", "reinit", "random_mask")  # the winning ticket and its two controls
LABELS = {"ticket": "winning ticket", "reinit": "same masks, random re-init", "random_mask": "random masks"}
FORMAT = "workbench.lottery/1"
RECIPE = {"epochs": 0, "lr": 0.0, "seed": 0}  # recipe fields, with their defaults for files saved without them
RECORDED = Path(__file__).resolve().parent / "recorded"
EMPTY_HISTOGRAM = np.zeros(len(BINS), dtype=np.int64)


@dataclass
class LotteryRound:
    round: int
    sparsity: float  # of the pruned layers' weights, after this round's pruning
    masks: dict[str, torch.Tensor]  # the ticket's bool masks (True = kept) by state_dict name, on the CPU
    val: dict[str, float]  # accuracy after retraining, by run: "ticket", "reinit", "random_mask"
    test: dict[str, float]
    seconds: float
    loss: float = float("nan")  # the ticket's training loss in its last epoch
    histograms: dict[str, np.ndarray] = field(default_factory=dict)  # |w| counts per BINS of the trained ticket


@dataclass
class LotteryHistory:
    """What ``lottery_ticket`` found: the dense network's accuracy and one ``LotteryRound`` per round."""

    model: str  # the model's name, or its class name when a model was given
    rate: float  # share of the remaining weights pruned each round
    rewind: int  # optimizer step the survivors are reset to (0: the initialization)
    scope: str  # "local" (per layer) or "global"
    dense_val: float  # the dense network after its first training
    dense_test: float
    rewind_weights: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)  # state_dict at step k (CPU)
    rounds: list[LotteryRound] = field(default_factory=list)
    dense_loss: float = float("nan")
    dense_histograms: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    dataset: str = ""  # the data's name where known (shown in titles)
    epochs: int = 0  # of every training (the dense one, the ticket's and the controls')
    lr: float = 0.0
    seed: int = 0

    def curves(self, split: str = "test") -> dict[str, tuple[list[float], list[float]]]:
        """Run → (sparsities, accuracies), starting at the dense network (sparsity 0)."""
        check_choice("split", split, ("val", "test"))
        dense = self.dense_val if split == "val" else self.dense_test
        sparsities = [0.0, *(r.sparsity for r in self.rounds)]
        return {run: (sparsities, [dense, *(getattr(r, split)[run] for r in self.rounds)]) for run in RUNS}

    def to_dicts(self) -> list[dict]:
        """One row per round (masks left out): round, sparsity, seconds and ``<split>_<run>`` accuracies."""
        rows = []
        for r in self.rounds:
            row = {"round": r.round, "sparsity": r.sparsity, "seconds": r.seconds}
            row.update({f"{split}_{run}": getattr(r, split)[run] for split in ("val", "test") for run in RUNS})
            rows.append(row)
        return rows

    def plot(self, split: str = "test", ax=None):
        """Accuracy against the share of weights remaining: ticket, random re-init, random masks."""
        from .viz.lottery import plot_lottery

        curves = {LABELS[run]: curve for run, curve in self.curves(split).items()}
        dense = self.dense_val if split == "val" else self.dense_test
        return plot_lottery(curves, dense, split=split, ax=ax)

    def kept_per_input(self, layer: str) -> np.ndarray:
        """(rounds, inputs): the share of ``layer``'s weights the ticket keeps from each input, round by round
        (a first layer's row shows which input positions the ticket listens to)."""
        if not self.rounds:
            raise ValueError("the history has no rounds")
        if layer not in self.rounds[0].masks:
            raise ValueError(f"layer {layer!r} was not pruned; choose from {list(self.rounds[0].masks)}")
        rows = []
        for r in self.rounds:
            mask = r.masks[layer]
            rows.append(mask.reshape(mask.shape[0], mask.shape[1], -1).float().mean(dim=(0, 2)).numpy())
        return np.stack(rows)

    def recording(self) -> Recording:
        """The ticket's rounds as a ``Recording`` (frame r: round r's masks, sparsity and val accuracy; frame 0:
        the dense network), for the over-time replay; its schedule is IMP's: the same share pruned each round."""
        if not self.rounds:
            raise ValueError("the history has no rounds to replay")
        layers = list(self.rounds[0].masks)
        last = len(self.rounds)
        plan = schedule("exponential", self.rate, self.rounds[-1].sparsity, start=1, end=last, every=1)
        dense_masks = {name: torch.ones_like(mask) for name, mask in self.rounds[0].masks.items()}
        frames = [Frame(0, 0.0, self.dense_loss, self.dense_val, dense_masks, self._histograms(self.dense_histograms))]
        frames += [
            Frame(r.round, r.sparsity, r.loss, r.val["ticket"], r.masks, self._histograms(r.histograms))
            for r in self.rounds
        ]
        where = f" on {self.dataset}" if self.dataset else ""
        method = f"lottery ticket · {self.model}{where} · rewind to step {self.rewind}"
        return Recording(method, plan, layers, frames, unit="round")

    def _histograms(self, histograms: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: histograms.get(name, EMPTY_HISTOGRAM) for name in self.rounds[0].masks}

    def save(self, path: str | os.PathLike) -> None:
        """Write the history (masks, accuracies, rewind weights) to ``path``, readable by ``LotteryHistory.load``."""
        torch.save(_to_plain(self), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LotteryHistory:
        """A history saved by ``save``; read with ``torch.load(weights_only=True)``: no pickled code runs."""
        try:
            plain = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
            raise ValueError(f"{os.fspath(path)} is not a saved lottery history: {type(error).__name__}") from None
        if not isinstance(plain, dict) or plain.get("format") != FORMAT:
            raise ValueError(f"{os.fspath(path)} is not a saved lottery history (format {FORMAT!r} expected)")
        return _from_plain(plain)


def _packed(mask: torch.Tensor) -> dict:
    """A bool mask as 8 entries per byte (``np.packbits``) and its shape: an eighth of a bool tensor's bytes."""
    bits = np.packbits(mask.to(torch.bool).flatten().numpy())
    return {"shape": list(mask.shape), "bits": torch.from_numpy(bits)}


def _unpacked(packed: dict) -> torch.Tensor:
    shape = packed["shape"]
    count = int(np.prod(shape))
    return torch.from_numpy(np.unpackbits(packed["bits"].numpy(), count=count).astype(bool)).view(shape)


def _to_plain(history: LotteryHistory) -> dict:
    def histograms(counts: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(np.asarray(c, dtype=np.int64)) for name, c in counts.items()}

    rounds = [
        {
            "round": r.round,
            "sparsity": r.sparsity,
            "masks": {name: _packed(mask) for name, mask in r.masks.items()},
            "val": dict(r.val),
            "test": dict(r.test),
            "seconds": r.seconds,
            "loss": r.loss,
            "histograms": histograms(r.histograms),
        }
        for r in history.rounds
    ]
    fields = ("model", "rate", "rewind", "scope", "dense_val", "dense_test", "dense_loss", "dataset", *RECIPE)
    plain = {"format": FORMAT, **{name: getattr(history, name) for name in fields}}
    plain.update(rewind_weights=history.rewind_weights, dense_histograms=histograms(history.dense_histograms))
    plain["rounds"] = rounds
    return plain


def _from_plain(plain: dict) -> LotteryHistory:
    def histograms(counts: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {name: c.numpy() for name, c in counts.items()}

    rounds = [
        LotteryRound(
            r["round"],
            r["sparsity"],
            {name: _unpacked(packed) for name, packed in r["masks"].items()},
            r["val"],
            r["test"],
            r["seconds"],
            r["loss"],
            histograms(r["histograms"]),
        )
        for r in plain["rounds"]
    ]
    fields = ("model", "rate", "rewind", "scope", "dense_val", "dense_test")
    return LotteryHistory(
        *(plain[name] for name in fields),
        rewind_weights=plain["rewind_weights"],
        rounds=rounds,
        dense_loss=plain["dense_loss"],
        dense_histograms=histograms(plain["dense_histograms"]),
        dataset=plain["dataset"],
        **{name: plain.get(name, default) for name, default in RECIPE.items()},
    )


def recorded_lottery(model: str) -> LotteryHistory:
    """The shipped history of ``benchmarks/lottery.py``'s first seed for ``model`` ("mlp" on digits, "mlp1d" on
    mnist1d), so notebooks show a long run without recomputing it."""
    path = RECORDED / f"lottery_{model}.pt"
    if not path.exists():
        shipped = sorted(p.stem.removeprefix("lottery_") for p in RECORDED.glob("lottery_*.pt"))
        raise ValueError(f"no recorded lottery run for {model!r}; recorded: {', '.join(shipped)}")
    return LotteryHistory.load(path)

"""A report anyone can send: one self-contained HTML page about a pruned model.

``report_page`` prunes a shipped model (or takes a ``wb.save_sparse`` file, or a module with its data, as it is) and
lays out its masks, per-layer sparsity, layer sensitivity, the model run every way ``compare_modes`` knows, where
its file's bytes go and the accuracy / latency / file-size trade-off across sparsity, under a header of settings,
accuracy, machine and the command that rebuilds it. Figures are inline PNGs: nothing is fetched. ``write_report``
writes the page atomically; ``workbench report MODEL`` is the command (``report_command``).

Example:
    >>> page = report_page("mlp", sparsity=0.9, sensitivity_sparsities=(0.0, 0.9), tradeoff_sparsities=(0.0, 0.9),
    ...                    min_run_time=0.01)
    >>> [f'<section id="{name}">' in page for name in SECTIONS]
    [True, True, True, True, True, True]
    >>> "<script" in page, page.count("<img ") == page.count('<img src="data:image/png;base64,')
    (False, True)
"""

from __future__ import annotations

import copy
import datetime
import html
import shlex
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from .criteria import CRITERIA
from .data import DatasetSplits, load_dataset
from .devices import describe_machine, resolve_device
from .execution import MODES
from .html_blocks import figure_img, formatted, html_page, html_table
from .masks import get_masks
from .measure import compare_modes, parameter_counts
from .models import MODELS
from .patterns import parse_pattern
from .pruning import prune
from .reports import SCOPES, check_choice, check_sparsity, sparsity_report
from .sensitivity import sensitivity
from .storage import load_sparse, read_sparse
from .storage_format import write_atomically
from .storage_report import BOUND, PARTS, storage_report
from .structure.saving import registry_name
from .tradeoff import tradeoff
from .train import evaluate, fine_tune, seed_everything
from .zoo import checkpoint_info, pretrained

SECTIONS = {
    "masks": "Masks",
    "layers": "Per-layer sparsity",
    "sensitivity": "Layer sensitivity",
    "modes": "Execution modes",
    "storage": "Storage",
    "tradeoff": "Trade-off across sparsity",
}
SHIPPED_SPARSITY = 0.5  # what a shipped model is pruned to when no sparsity is given
SENSITIVITY_SPARSITIES = (0.0, 0.5, 0.9)
TRADEOFF_SPARSITIES = (0.0, 0.5, 0.9)  # the chosen sparsity joins them
MODE_BATCHES = (1, 64)
FINE_TUNE_LR = 2e-3  # as each trade-off point is fine-tuned, so the chart's ring and the header agree
TIMED = (("latency_ms", ".3f"), ("speedup", ".2f×"))  # compare_modes columns, as shown


def _check_whole(value, what: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{what} must be a whole number ≥ {least}, got {value!r}")


@dataclass
class Settings:
    """How the report prunes and measures; checked on creation, before any work."""

    criterion: str = "magnitude"
    pattern: str = "unstructured"
    scope: str = "local"
    sparsity: float | None = None  # None: SHIPPED_SPARSITY for a shipped model, none for a model as it is
    exclude: tuple[str, ...] = ()
    fine_tune_epochs: int = 0
    tradeoff_epochs: int | None = None  # None: as fine_tune_epochs
    device: str = "auto"
    threads: int | None = 1
    min_run_time: float = 0.05
    sensitivity_sparsities: tuple[float, ...] = SENSITIVITY_SPARSITIES
    tradeoff_sparsities: tuple[float, ...] | None = None  # None: TRADEOFF_SPARSITIES and the chosen sparsity
    max_mask_layers: int = 8
    fixed: float | None = field(init=False, default=None)  # the sparsity an N:M pattern fixes

    def __post_init__(self):
        check_choice("criterion", self.criterion, tuple(CRITERIA))
        check_choice("scope", self.scope, SCOPES)
        self.fixed = parse_pattern(self.pattern).fixed_sparsity
        if self.sparsity is not None:
            self.sparsity = check_sparsity(self.sparsity)
        for epochs in (self.fine_tune_epochs, self.tradeoff_epochs or 0):
            _check_whole(epochs, "fine-tuning epochs", 0)
        if self.threads is not None:
            _check_whole(self.threads, "threads (None: torch's own count)", 1)
        for value in (*self.sensitivity_sparsities, *(self.tradeoff_sparsities or ())):
            check_sparsity(value, "each grid sparsity")
        resolve_device(self.device)
        self.exclude = tuple(self.exclude)


@dataclass
class Subject:
    """The model reported, its data, and where it came from."""

    model: nn.Module
    data: DatasetSplits
    name: str
    source: str  # in words, for the header
    given: str | None  # MODEL as the command takes it (None for a module handed over in Python)
    as_is: bool  # a model handed over already pruned: pruned further only when a sparsity is asked for


def load_subject(model: str | Path | nn.Module, data: DatasetSplits | None = None) -> Subject:
    """A shipped model by name, a ``wb.save_sparse`` file, or a module (with ``data``); a ValueError says why not."""
    if isinstance(model, nn.Module):
        if data is None:
            raise ValueError("pass data=<the model's DatasetSplits> with a model of your own")
        name = registry_name(model) or type(model).__name__
        return Subject(copy.deepcopy(model).eval(), data, name, "a model handed over in Python", None, as_is=True)
    given = str(model)
    if given in MODELS:
        data = data if data is not None else load_dataset(checkpoint_info(given)["dataset"])
        return Subject(pretrained(given), data, given, "shipped checkpoint", given, as_is=False)
    path = Path(given)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a shipped model ({', '.join(MODELS)}) or a sparse file")
    if not path.is_file():
        raise ValueError(f"unknown model {given!r}: give one of {', '.join(MODELS)} or a file wb.save_sparse wrote")
    name = read_sparse(path).model
    if not name:
        raise ValueError(f"{path} holds a user's model: load it with its template and call report_page(model, data)")
    data = data if data is not None else load_dataset(checkpoint_info(name)["dataset"])
    return Subject(load_sparse(path), data, name, f"file {path.name}, as saved", given, as_is=True)


def pruning_target(settings: Settings, as_is: bool) -> float | None:
    """The sparsity this report prunes to (an N:M pattern's own); None: the model stays as given."""
    if as_is and settings.sparsity is None:
        return None
    if settings.fixed is not None:
        return settings.fixed
    return SHIPPED_SPARSITY if settings.sparsity is None else settings.sparsity


def _epochs(count: int) -> str:
    return f"{count} epoch{'s' if count != 1 else ''}"


def _prune_subject(subject: Subject, settings: Settings) -> dict[str, float]:
    """Prune (to ``settings.sparsity``, unless None) and fine-tune ``subject.model`` in place, seeded as ``tradeoff``
    seeds each point; the test accuracy after each step."""
    test = subject.data.test
    accuracy = {"as given" if subject.as_is else "dense": evaluate(subject.model, test)}
    seed_everything(0)
    if settings.sparsity is not None:
        prune(
            subject.model, sparsity=None if settings.fixed is not None else settings.sparsity,
            criterion=settings.criterion, pattern=settings.pattern, scope=settings.scope, data=subject.data,
            exclude=settings.exclude,
        )  # fmt: skip
        accuracy["pruned"] = evaluate(subject.model, test)
    if epochs := settings.fine_tune_epochs:
        fine_tune(subject.model, subject.data, epochs=epochs, lr=FINE_TUNE_LR, seed=0, progress=False, device="cpu")
        subject.model.eval()
        accuracy[f"fine-tuned {_epochs(epochs)}"] = evaluate(subject.model, test)
    return accuracy


def _section(key: str, lead: str, body: str) -> str:
    return f'<section id="{key}"><h2>{SECTIONS[key]}</h2><p class="lead">{html.escape(lead)}</p>{body}</section>'


def _skipped(why: str) -> str:
    return f'<p class="skip">Skipped: {html.escape(why)}</p>'


def masks_section(model: nn.Module, settings: Settings) -> str:
    from .viz.pruning import plot_masks

    masks = {name: mask for name, mask in get_masks(model).items() if mask.dim() >= 2}  # weights, not biases or norms
    if not masks:
        return _section("masks", "Kept weights dark, pruned light.", _skipped("the model holds no masked weights"))
    shown = min(len(masks), settings.max_mask_layers)
    more = f" The first {shown} of {len(masks)} masked weights are drawn." if shown < len(masks) else ""
    lead = f"Each masked weight as a matrix (rows: outputs), kept weights dark, pruned light.{more}"
    return _section("masks", lead, figure_img(plot_masks(masks, max_layers=shown), "the masks"))


def layers_section(model: nn.Module) -> str:
    report = sparsity_report(model)
    rows = [
        [l.name, "×".join(map(str, l.shape)), f"{l.kept:,}", f"{l.total:,}", f"{l.sparsity:.2%}"] for l in report.layers
    ]
    rows.append(["all", "", f"{report.total - report.pruned:,}", f"{report.total:,}", f"{report.sparsity:.2%}"])
    lead = "Zeros in every prunable weight, as sparsity_report counts them."
    return _section("layers", lead, html_table(["layer", "shape", "kept", "total", "sparsity"], rows, left=2))


def sensitivity_section(reference: nn.Module, subject: Subject, settings: Settings) -> str:
    from .viz.pruning import plot_sensitivity

    lead = "Test accuracy with one layer pruned at a time, the others left as they were before this report pruned."
    if settings.fixed is not None:
        why = f"{settings.pattern} fixes every layer's sparsity at {settings.fixed:.0%}, so there is no grid to scan"
        return _section("sensitivity", lead, _skipped(why))
    result = sensitivity(
        reference, subject.data.test, settings.criterion, settings.pattern, settings.sensitivity_sparsities,
        data=subject.data, exclude=settings.exclude,
    )  # fmt: skip
    return _section("sensitivity", lead, figure_img(plot_sensitivity(result), "accuracy with one layer pruned"))


def _grouped_note(note: str) -> str:
    """A mode's note with the layers that stay dense for one reason named together."""
    reasons: dict[str, list[str]] = {}
    for part in note.split("; "):
        layer, found, why = part.partition(" dense: ")
        if not found:
            return note
        reasons.setdefault(why, []).append(layer)
    return "; ".join(f"{', '.join(layers)} stay dense: {why}" for why, layers in reasons.items())


def may_shrink(subject: Subject, settings: Settings) -> bool:
    """Whether shrinking is worth a try: unstructured and N:M pruning (of a model pruned here) rarely empty a unit."""
    return subject.as_is or not (settings.pattern == "unstructured" or settings.fixed is not None)


def modes_section(model: nn.Module, subject: Subject, settings: Settings) -> str:
    inputs = subject.data.test.tensors[0][: max(MODE_BATCHES)]
    modes = [mode for mode in MODES if mode != "shrunk" or may_shrink(subject, settings)]
    options = {"batch_sizes": MODE_BATCHES, "threads": settings.threads, "min_run_time": settings.min_run_time}
    table = compare_modes(model, inputs, modes, device=settings.device, **options)
    rows = []
    for mode, group in table.groupby("mode", sort=False):
        at, last = group.set_index("batch"), group.iloc[-1]
        measured = [formatted(at.at[b, column], form) for column, form in TIMED for b in MODE_BATCHES]
        stored = f"{int(last['bytes']):,}" if last["available"] else "—"
        diff, note = formatted(last["max_abs_diff"], ".1e"), _grouped_note(last["note"])
        rows.append([mode, *measured, diff, stored, note])
    if "shrunk" not in modes:
        why = (
            f"not tried: {settings.pattern} pruning rarely empties a whole neuron, filter or head (what shrinking cuts)"
        )
        rows.append(["shrunk", *["—"] * (len(rows[0]) - 2), why])
    measures = [
        f"{'ms' if column == 'latency_ms' else 'speedup'}, batch {b}" for column, _ in TIMED for b in MODE_BATCHES
    ]
    device = str(table["device"].iloc[0])
    threads = "the GPU" if device.startswith("cuda") else f"{settings.threads or torch.get_num_threads()} CPU thread(s)"
    lead = (
        f"The pruned model run every way compare_modes knows, on {device}, timed interleaved with the dense model "
        f"on {threads}; max |diff| is the largest output difference from dense. A mode that "
        "cannot run here shows — and says why."
    )
    return _section("modes", lead, html_table(["mode", *measures, "max |diff|", "bytes held", "note"], rows))


def storage_section(model: nn.Module) -> str:
    from .viz.storage import plot_storage

    report = storage_report(model)
    dense = report.files["torch.save dense"]["total"]
    rows = []
    for name, sizes in report.files.items():
        if sizes is None:
            rows.append([name, "—", "—", "—", "—", "—", report.notes[name]])
        else:
            parts = [f"{sizes[part]:,}" for part in PARTS]
            rows.append([name, f"{sizes['total']:,}", f"{sizes['total'] / dense:.1%}", *parts, ""])
    table = html_table(["file", "bytes", "of dense", *PARTS, "note"], rows)
    lead = f"What the model takes on disk as each kind of file, and the {BOUND} (storage_report)."
    return _section("storage", lead, table + figure_img(plot_storage(report), "where the file's bytes go"))


def tradeoff_section(reference: nn.Module, subject: Subject, settings: Settings, achieved: float) -> str:
    from .viz.tradeoff import plot_tradeoff

    chosen = settings.sparsity if settings.sparsity is not None else round(achieved, 3)
    grid = settings.tradeoff_sparsities or TRADEOFF_SPARSITIES
    if subject.as_is:  # its dense original is not here: 0 is the model as given, the rest re-prune it
        grid = (0.0, *(s for s in grid if s > achieved + 0.02))
    grid = tuple(sorted({float(s) for s in grid} | ({chosen} if settings.sparsity is not None else set())))
    modes = ("dense", "masked", "csr", *(("semi_structured",) if settings.fixed else ()))
    modes += ("shrunk",) if may_shrink(subject, settings) else ()
    epochs = settings.fine_tune_epochs if settings.tradeoff_epochs is None else settings.tradeoff_epochs
    table = tradeoff(
        reference, subject.data, patterns=(settings.pattern,), sparsities=grid, modes=modes,
        criterion=settings.criterion, exclude=settings.exclude, fine_tune_epochs=epochs, fine_tune_lr=FINE_TUNE_LR,
        devices=(str(resolve_device(settings.device)),), min_run_time=settings.min_run_time, threads=settings.threads,
    )  # fmt: skip
    if subject.as_is:
        table.loc[table["sparsity"] == 0, "sparsity"] = round(achieved, 3)
    points = ", ".join(f"{s:g}" for s in sorted(set(table["sparsity"])))
    tuned = f"fine-tuned {_epochs(epochs)}" if epochs else "not fine-tuned"
    lead = (
        f"A fresh copy pruned to each sparsity ({points}; {settings.criterion} × {settings.pattern} × local), {tuned}, "
        f"run as {', '.join(modes)}; the ring marks this report's sparsity."
    )
    if subject.as_is:
        lead += f" A model as given has no dense original here: its own point is {achieved:.1%}, as given."
    return _section("tradeoff", lead, figure_img(plot_tradeoff(table, sparsity=chosen), "the trade-off chart"))


def reproduce_command(subject: Subject, settings: Settings) -> str:
    """The ``workbench report`` command that rebuilds this page (or why there is none)."""
    if subject.given is None:
        return "(a model handed over in Python: call report_page(model, data, ...) with the settings above)"
    grid = ",".join(f"{s:g}" for s in settings.tradeoff_sparsities or ())
    flags = [
        ("--criterion", settings.criterion), ("--pattern", settings.pattern), ("--scope", settings.scope),
        ("--sparsity", None if settings.sparsity is None else f"{settings.sparsity:g}"),
        *(("--exclude", name) for name in settings.exclude), ("--fine-tune-epochs", str(settings.fine_tune_epochs)),
        ("--tradeoff-epochs", None if settings.tradeoff_epochs is None else str(settings.tradeoff_epochs)),
        ("--tradeoff-sparsities", grid or None), ("--device", settings.device),
        ("--threads", None if settings.threads == 1 else str(settings.threads or 0)),
    ]  # fmt: skip
    return shlex.join(["workbench", "report", subject.given, *(w for f, v in flags if v is not None for w in (f, v))])


def _pruning_words(subject: Subject, settings: Settings) -> str:
    exclude = f", excluding {', '.join(settings.exclude)}" if settings.exclude else ""
    how = (
        f"{settings.criterion} × {settings.pattern} × {settings.scope} to sparsity {settings.sparsity or 0:g}{exclude}"
    )
    if not subject.as_is:
        return how
    unrecorded = "as given (how it was pruned before is not recorded)"
    return f"{unrecorded}, then {how}" if settings.sparsity is not None else unrecorded


def header(subject: Subject, settings: Settings, accuracy: dict[str, float], achieved: float) -> str:
    steps = list(accuracy.items())
    text = " → ".join(f"<strong>{value:.2%}</strong> {html.escape(step)}" for step, value in steps)
    if not settings.fine_tune_epochs and len(steps) > 1:
        text += " — <em>not fine-tuned</em>"
    total, nonzero = parameter_counts(subject.model)
    described = MODELS[subject.name].description if subject.name in MODELS else ""
    facts = {
        "model": f"{subject.name} ({subject.source}){' — ' + described if described else ''}",
        "dataset": f"{subject.data.name}: accuracy on its test split ({len(subject.data.test):,} samples)",
        "pruning": _pruning_words(subject, settings) + f"; {achieved:.2%} of prunable weights are zero",
        "parameters": f"{total:,} in all, {nonzero:,} nonzero ({nonzero / total:.1%})",
        "machine": describe_machine(),
    }
    rows = "".join(f"<tr><th>{key}</th><td>{html.escape(value)}</td></tr>" for key, value in facts.items())
    command = html.escape(reproduce_command(subject, settings))
    return (
        f"<header><h1>Pruning report: {html.escape(subject.name)}</h1>"
        f'<p class="accuracy">Test accuracy: {text}</p><table class="facts">{rows}'
        f"<tr><th>reproduce</th><td><pre>{command}</pre></td></tr></table></header>"
    )


def report_page(model: str | Path | nn.Module = "cnn", data: DatasetSplits | None = None, **settings) -> str:
    """The report page of ``model`` as HTML text.

    Args:
        model: a shipped model's name (pruned here, to ``sparsity``, default 0.5), a file ``wb.save_sparse`` wrote
            (reported as saved, pruned again only when ``sparsity`` is given; its dataset is its model's), or an
            ``nn.Module`` with ``data`` (as it is, like a file).
        data: the dataset; default: the model's shipped one.
        **settings: the fields of ``Settings``: criterion, pattern, scope, sparsity, exclude, fine_tune_epochs,
            tradeoff_epochs, device, threads (CPU timing; 1 by default), min_run_time, sensitivity_sparsities,
            tradeoff_sparsities, max_mask_layers.
    """
    start = time.perf_counter()
    chosen = Settings(**settings)
    subject = load_subject(model, data)
    chosen = replace(chosen, sparsity=pruning_target(chosen, subject.as_is))
    reference = copy.deepcopy(subject.model)  # before this report's pruning: sensitivity and trade-off start here
    accuracy = _prune_subject(subject, chosen)
    achieved = sparsity_report(subject.model).sparsity
    body = [
        header(subject, chosen, accuracy, achieved),
        masks_section(subject.model, chosen),
        layers_section(subject.model),
        sensitivity_section(reference, subject, chosen),
        modes_section(subject.model, subject, chosen),
        storage_section(subject.model),
        tradeoff_section(reference, subject, chosen, achieved),
    ]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    footer = f"<footer>Built in {time.perf_counter() - start:.0f} s on {when} by workbench.</footer>"
    return html_page(f"Pruning report: {subject.name}", "".join(body) + footer)


def write_report(
    model: str | Path | nn.Module, path="report.html", data: DatasetSplits | None = None, **settings
) -> Path:
    """Write ``report_page(model, data, **settings)`` to ``path`` (atomically: a failure leaves no file); returns it."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder; give a file name such as {path / 'report.html'}")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: folder {path.parent} does not exist")
    write_atomically(path, report_page(model, data, **settings).encode("utf-8"))
    return path

"""The `workbench` command: list datasets and models, regenerate shipped checkpoints, prune (and shrink) a model,
write a report page about it, run a compression study, serve the dashboard app, build the notebooks' HTML site.

Example:
    >>> main(["info", "--json"])  # doctest: +ELLIPSIS
    {"datasets": ...
    0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

from .criteria import CRITERIA
from .data import DATASETS, load_dataset
from .devices import resolve_device
from .iterative import iterative_prune
from .masks import plain_state_dict
from .measure import compare_latency, model_costs
from .models import MODELS, build_model, count_parameters
from .patterns import coupled_patterns, pattern_names
from .pruning import prune
from .report_command import add_report_parser, report_command
from .reports import SCOPES, sparsity_report
from .schedules import SCHEDULES
from .shrinking import shrink_with_report
from .site import build_site, default_notebooks
from .storage import save_sparse
from .structure.saving import check_path, save_shrunk
from .structure.shrink import default_inputs
from .studies.command import add_study_parser, study_command
from .train import evaluate, fine_tune
from .widgets.serve import serve
from .zoo import RECIPES, checkpoint_info, pretrained, train_checkpoint

SHRINK_BATCH = 256  # --shrink's default batch: compute, not per-call overhead, as in BENCHMARKS.md and notebook 05


def check_out(path, twin: bool, flag: str = "--out") -> Path:
    """``flag``'s file as a Path, or a ValueError saying why it cannot be written, checked before any work.

    ``twin``: a shrunk save, which also writes ``path``'s .json twin (``saving.check_path`` refuses a .json path).
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {flag} {path}: folder {folder} does not exist")
    if path.is_dir():
        raise ValueError(f"cannot write {flag} {path}: it is a folder; give a file name such as {path / 'model.pt'}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"cannot write {flag} {path}: permission denied")
    return check_path(path) if twin else path


def info() -> dict:
    """Datasets (with split sizes) and models (with parameters and shipped test accuracy), as one dict."""
    datasets = {}
    for name in DATASETS:
        data = load_dataset(name)
        datasets[name] = {
            "input_shape": list(data.input_shape),
            "classes": len(data.classes),
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
        }
    models = {}
    for name, spec in MODELS.items():
        try:
            shipped = checkpoint_info(name)
        except ValueError:
            shipped = None
        models[name] = {
            "description": spec.description,
            "dataset": spec.dataset,
            "parameters": shipped["parameters"] if shipped else count_parameters(build_model(name)),
            "checkpoint": shipped is not None,
            "test_accuracy": shipped["test_accuracy"] if shipped else None,
        }
    return {"datasets": datasets, "models": models}


def _print_info(report: dict) -> None:
    print("datasets:")
    for name, d in report["datasets"].items():
        shape = "×".join(map(str, d["input_shape"]))
        splits = f"{d['train']}/{d['val']}/{d['test']}"
        print(f"  {name:<12} input {shape:<8} {d['classes']:>2} classes  train/val/test {splits}")
    print("models:")
    for name, m in report["models"].items():
        accuracy = f"{m['test_accuracy']:.2%}" if m["test_accuracy"] is not None else "no checkpoint"
        print(f"  {name:<12} {m['parameters']:>8,} params  on {m['dataset']:<8} test {accuracy:<8} {m['description']}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Teach and explore neural-network pruning.")
    commands = parser.add_subparsers(dest="command", required=True)
    info_parser = commands.add_parser("info", help="list datasets and models with shipped test accuracy")
    info_parser.add_argument("--json", action="store_true", help="print one JSON object")
    train_parser = commands.add_parser("train", help="retrain a shipped checkpoint deterministically")
    train_parser.add_argument("name", choices=sorted(RECIPES), help="model to train")
    train_parser.add_argument("--out", default=None, help="folder to write NAME.pt/NAME.json (default: the package's)")
    train_parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    train_parser.add_argument("--json", action="store_true", help="print the checkpoint metadata as JSON")
    train_parser.add_argument(
        "--prune-to", type=float, default=None, help="train sparse: reach this sparsity during training (needs --out)"
    )
    train_parser.add_argument("--schedule", default="cubic", choices=list(SCHEDULES), help="with --prune-to")
    prune_parser = commands.add_parser("prune", help="prune a shipped model and report per-layer sparsity and accuracy")
    prune_parser.add_argument("model", choices=sorted(MODELS), help="shipped model to prune")
    prune_parser.add_argument("--sparsity", type=float, default=0.5, help="fraction of weights to prune, in [0, 1)")
    prune_parser.add_argument("--criterion", default="magnitude", choices=list(CRITERIA), help="importance criterion")
    prune_parser.add_argument("--pattern", default="unstructured", help=f"one of: {', '.join(pattern_names())}")
    prune_parser.add_argument("--scope", default="local", choices=SCOPES)
    prune_parser.add_argument(
        "--exclude", action="append", default=[], help="module name or glob to leave dense (repeatable)"
    )
    prune_parser.add_argument("--json", action="store_true", help="print one JSON object")
    prune_parser.add_argument(
        "--fine-tune-epochs", type=int, default=0, help="fine-tune after pruning (per round with --rounds > 1)"
    )
    prune_parser.add_argument("--rounds", type=int, default=1, help="prune → fine-tune rounds (iterative pruning)")
    prune_parser.add_argument(
        "--schedule", default="exponential", choices=list(SCHEDULES), help="how the sparsity rises over the rounds"
    )
    prune_parser.add_argument(
        "--out",
        default=None,
        help="save a plain state_dict with pruned weights zeroed "
        "(with --shrink: the shrunk model's state_dict, and its shapes in FILE's .json twin)",
    )
    prune_parser.add_argument("--save-sparse", metavar="FILE", help="save the pruned model as a compact sparse file")
    prune_parser.add_argument(
        "--shrink",
        action="store_true",
        help=f"remove whole units ({', '.join(coupled_patterns())}) and report shapes, params, FLOPs and latency",
    )
    prune_parser.add_argument(
        "--not-exact",
        action="store_true",
        help="with --shrink: also remove widths whose removal changes the function (a transformer's LayerNorm'd "
        "hidden width); the report names them; fine-tune afterwards",
    )
    prune_parser.add_argument(
        "--batch",
        type=int,
        default=SHRINK_BATCH,
        help=f"with --shrink: batch size for FLOPs and latency (default {SHRINK_BATCH}; 1 times single-image calls)",
    )
    prune_parser.add_argument(
        "--device", default="auto", help="with --shrink: where latency is timed: auto (CUDA when available), cpu, cuda"
    )
    add_report_parser(commands)
    add_study_parser(commands)
    app_parser = commands.add_parser("app", help="serve the dashboard (every app in tabs) with Voilà on 127.0.0.1")
    app_parser.add_argument("--port", type=int, default=None, help="port to listen on (default: a free one)")
    app_parser.add_argument("--no-browser", action="store_true", help="only print the URL; do not open a browser")
    site_parser = commands.add_parser("site", help="build an HTML site of the executed notebooks with their figures")
    site_parser.add_argument(
        "notebooks", nargs="*", default=["notebooks"], help="notebooks or folders of them (default: notebooks)"
    )
    site_parser.add_argument("--out", default="build/site", help="folder to write the pages to (default: build/site)")
    site_parser.add_argument(
        "--no-execute", action="store_true", help="take the notebooks as saved (already run) instead of running them"
    )
    return parser


def site_command(args) -> Path:
    """Build the site the arguments ask for; returns its index page."""
    paths = []
    for given in map(Path, args.notebooks):
        found = default_notebooks(given) if given.is_dir() else [given]
        if given.is_dir() and not found:
            raise ValueError(f"no numbered notebooks (NN_name.ipynb) in folder {given}")
        paths += found
    return build_site(paths, Path(args.out), execute=not args.no_execute)


def prune_command(args):
    """Prune a shipped model as the arguments say; returns the PruneResult and a JSON-ready report."""
    if args.not_exact:
        raise ValueError("--not-exact chooses what --shrink removes: pass it with --shrink")
    for flag, path in (("--out", args.out), ("--save-sparse", args.save_sparse)):
        if path:
            check_out(path, twin=False, flag=flag)  # before the work, not after
    model = pretrained(args.model)
    data = load_dataset(checkpoint_info(args.model)["dataset"])
    before = evaluate(model, data.test)
    sparsity = None if ":" in args.pattern else args.sparsity
    if args.rounds < 1 or args.fine_tune_epochs < 0:
        raise ValueError(
            f"--rounds must be >= 1 and --fine-tune-epochs >= 0, got {args.rounds}, {args.fine_tune_epochs}"
        )
    options = {
        "criterion": args.criterion,
        "pattern": args.pattern,
        "scope": args.scope,
        "exclude": tuple(args.exclude),
    }
    if args.rounds > 1:
        history = iterative_prune(
            model,
            data,
            sparsity,
            rounds=args.rounds,
            schedule=args.schedule,
            epochs=args.fine_tune_epochs,
            split="test",
            progress=False,
            **options,
        )
        result = sparsity_report(model)
        pruned_accuracy = history.rounds[-1].accuracy_pruned
    else:
        result = prune(model, sparsity=sparsity, data=data, **options)
        pruned_accuracy = evaluate(model, data.test)
        if args.fine_tune_epochs:
            fine_tune(model, data, epochs=args.fine_tune_epochs, progress=False)
    report = {
        "model": args.model,
        "criterion": args.criterion,
        "pattern": args.pattern,
        "scope": args.scope,
        "requested_sparsity": sparsity,
        "rounds": args.rounds,
        "fine_tune_epochs": args.fine_tune_epochs,
        **result.to_dict(),
        "accuracy_before": before,
        "accuracy_pruned": pruned_accuracy,
        "accuracy_after": evaluate(model, data.test),
    }
    if args.out:
        torch.save(plain_state_dict(model), args.out)
        report["out"] = args.out
    if args.save_sparse:
        report["sparse"] = {"path": args.save_sparse, "bytes": save_sparse(model, args.save_sparse)}
    return result, report


def shrink_command(args) -> tuple[nn.Module, dict]:
    """Shrink a shipped model by whole units as the arguments say; returns the small model and a JSON-ready report.

    Dense and shrunk models are measured on the same random batch: parameters, FLOPs, and CPU latency
    timed interleaved (``compare_latency``) with the current torch thread count.
    """
    if args.pattern not in coupled_patterns():
        raise ValueError(
            f"--shrink removes whole units: use --pattern {' / '.join(coupled_patterns())}, not {args.pattern!r}"
        )
    if args.batch < 1:
        raise ValueError(f"--batch must be at least 1, got {args.batch}")
    resolve_device(args.device)  # an unknown or absent device is refused before the work
    if args.save_sparse:
        raise ValueError("--save-sparse saves the masked model; --shrink saves the shrunk one with --out")
    if args.out:
        check_out(args.out, twin=True)  # before the work, not after
    dense = pretrained(args.model)
    data = load_dataset(checkpoint_info(args.model)["dataset"])
    small, shrunk = shrink_with_report(
        dense,
        sparsity=args.sparsity,
        pattern=args.pattern,
        criterion=args.criterion,
        scope=args.scope,
        data=data,
        exclude=tuple(args.exclude),
        exact=not args.not_exact,
    )
    inputs = default_inputs(dense, args.batch)
    timed = compare_latency({"dense": dense, "shrunk": small}, inputs, device=args.device)
    costs = {
        "dense": dataclasses.replace(model_costs(dense, inputs), latency=timed["dense"]),
        "shrunk": dataclasses.replace(model_costs(small, inputs), latency=timed["shrunk"]),
    }
    report = {
        "model": args.model,
        "criterion": args.criterion,
        "pattern": args.pattern,
        "scope": args.scope,
        "sparsity": args.sparsity,
        "batch": args.batch,
        "threads": timed["dense"].threads,
        "device": timed["dense"].device,
        "layers": [{"name": name, "before": before, "after": after} for name, before, after in shrunk.layers],
        "notes": shrunk.notes,
        "exact": not shrunk.changed,
        "changed_groups": sorted(shrunk.changed),
        "shrink_seconds": shrunk.seconds,
        "accuracy_before": evaluate(dense, data.test),
        "accuracy_after": evaluate(small, data.test),
        **{name: c.to_dict() for name, c in costs.items()},
        "ratios": {
            "params": costs["dense"].params / costs["shrunk"].params,
            "flops": costs["dense"].flops / costs["shrunk"].flops,
            "latency": timed["dense"].median_ms / timed["shrunk"].median_ms,
        },
    }
    if args.out:
        save_shrunk(small, args.out, {"shrink": report})
        report["out"] = args.out
    return small, report


def _print_shrink(report: dict) -> None:
    what = f"{report['criterion']} × {report['pattern']} × {report['scope']}"
    print(f"{report['model']}: {what} at sparsity {report['sparsity']:g}, shrunk")
    width = max([len(layer["name"]) for layer in report["layers"]] + [5])
    for layer in report["layers"]:
        print(f"  {layer['name']:<{width}}  {layer['before']:>12} → {layer['after']}")
    dense, shrunk, ratios = report["dense"], report["shrunk"], report["ratios"]
    batch, threads = report["batch"], report["threads"]
    rows = [
        ("parameters", f"{dense['params']:,}", f"{shrunk['params']:,}", f"{ratios['params']:.2f}×"),
        (f"FLOPs (batch {batch})", f"{dense['flops']:,}", f"{shrunk['flops']:,}", f"{ratios['flops']:.2f}×"),
        (
            f"latency ms (batch {batch})",
            f"{dense['latency']['median_ms']:.3f}",
            f"{shrunk['latency']['median_ms']:.3f}",
            f"{ratios['latency']:.2f}×",
        ),
        ("test accuracy", f"{report['accuracy_before']:.2%}", f"{report['accuracy_after']:.2%}", ""),
    ]
    label = max(len(row[0]) for row in rows)
    number = max([len(row[i]) for row in rows for i in (1, 2)] + [6])
    print(f"{'':<{label}}  {'dense':>{number}}  {'shrunk':>{number}}  dense/shrunk")
    for name, before, after, ratio in rows:
        print(f"{name:<{label}}  {before:>{number}}  {after:>{number}}  {ratio}".rstrip())
    where = f"{threads} threads ({report['device']}; dense ÷ shrunk median latency)"
    print(f"speedup {ratios['latency']:.2f}× at batch {batch}, {where}")
    for note in report["notes"]:
        print(f"note: {note}")
    if "out" in report:
        twin = Path(report["out"]).with_suffix(".json")
        print(f"saved the shrunk state_dict to {report['out']} and how to rebuild it to {twin}")


def one_line(error: Exception) -> str:
    """An error's message as one line of text (a library's message may span several)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command ``argv`` asks for; a ValueError (a refused input) is one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ValueError as error:
        print(f"workbench {args.command}: {one_line(error)}", file=sys.stderr)
        return 2


def run(args) -> int:
    if args.command == "app":
        return serve(args.port, open_browser=not args.no_browser)
    if args.command == "study":
        return study_command(args)
    if args.command == "report":
        check_out(args.out, twin=False)  # before the work, not after
        return report_command(args)
    if args.command == "site":
        print(f"workbench site: wrote {site_command(args)}")
        return 0
    if args.command == "info":
        report = info()
        print(json.dumps(report)) if args.json else _print_info(report)
    elif args.command == "train":
        if args.epochs is not None and args.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
        if args.prune_to is not None and not args.out:
            raise ValueError("--prune-to trains a sparse variant: give --out FOLDER so the shipped checkpoint stays")
        meta = train_checkpoint(
            args.name,
            Path(args.out) if args.out else None,
            progress=not args.json,
            epochs=args.epochs,
            prune_to=args.prune_to,
            schedule=args.schedule,
        )
        if args.json:
            print(json.dumps(meta))
        else:
            print(f"{args.name}: test accuracy {meta['test_accuracy']:.2%}, {meta['parameters']:,} parameters")
    elif args.command == "prune":
        result, report = shrink_command(args) if args.shrink else prune_command(args)
        if args.shrink:
            print(json.dumps(report)) if args.json else _print_shrink(report)
        elif args.json:
            print(json.dumps(report))
        else:
            print(f"{args.model}: {args.criterion} × {args.pattern} × {args.scope}")
            print(result)
            if report["fine_tune_epochs"]:
                rounds = f" in {report['rounds']} rounds" if report["rounds"] > 1 else ""
                print(
                    f"accuracy {report['accuracy_before']:.2%} → {report['accuracy_pruned']:.2%} pruned{rounds} → "
                    f"{report['accuracy_after']:.2%} fine-tuned ({report['fine_tune_epochs']} epochs"
                    f"{' a round' if rounds else ''})"
                )
            else:
                print(f"accuracy {report['accuracy_before']:.2%} → {report['accuracy_after']:.2%} (no fine-tuning)")
            if args.out:
                print(f"saved plain state_dict to {args.out}")
            if args.save_sparse:
                print(
                    f"saved the pruned model as a {report['sparse']['bytes']:,}-byte sparse file to {args.save_sparse}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `workbench` command: list datasets and models, regenerate shipped checkpoints, prune a model.

Example:
    >>> main(["info", "--json"])  # doctest: +ELLIPSIS
    {"datasets": ...
    0
"""

from __future__ import annotations

import argparse
import json
import sys

from .criteria import CRITERIA
from .data import DATASETS, load_dataset
from .masks import plain_state_dict
from .models import MODELS, build_model, count_parameters
from .patterns import PATTERNS
from .pruner import SCOPES, prune
from .train import evaluate
from .zoo import RECIPES, checkpoint_info, pretrained, train_checkpoint


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
        print(f"  {name:<12} input {shape:<8} {d['classes']:>2} classes  train/val/test {d['train']}/{d['val']}/{d['test']}")
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
    prune_parser = commands.add_parser("prune", help="prune a shipped model and report per-layer sparsity and accuracy")
    prune_parser.add_argument("model", choices=sorted(MODELS), help="shipped model to prune")
    prune_parser.add_argument("--sparsity", type=float, default=0.5, help="fraction of weights to prune, in [0, 1)")
    prune_parser.add_argument("--criterion", default="magnitude", help=f"one of {', '.join(CRITERIA)}")
    prune_parser.add_argument("--pattern", default="unstructured", help=f"one of: {', '.join(PATTERNS)}")
    prune_parser.add_argument("--scope", default="local", choices=SCOPES)
    prune_parser.add_argument("--exclude", action="append", default=[], help="module name or glob to leave dense (repeatable)")
    prune_parser.add_argument("--json", action="store_true", help="print one JSON object")
    prune_parser.add_argument("--out", default=None, help="save a plain state_dict with pruned weights zeroed")
    return parser


def prune_command(args):
    """Prune a shipped model as the arguments say; returns the PruneResult and a JSON-ready report."""
    model = pretrained(args.model)
    data = load_dataset(checkpoint_info(args.model)["dataset"])
    before = evaluate(model, data.test)
    sparsity = None if ":" in args.pattern else args.sparsity
    result = prune(model, sparsity=sparsity, criterion=args.criterion, pattern=args.pattern, scope=args.scope,
                   data=data, exclude=tuple(args.exclude))
    report = {
        "model": args.model, "criterion": args.criterion, "pattern": args.pattern, "scope": args.scope,
        "requested_sparsity": sparsity, **result.to_dict(),
        "accuracy_before": before, "accuracy_after": evaluate(model, data.test),
    }
    if args.out:
        import torch

        torch.save(plain_state_dict(model), args.out)
        report["out"] = args.out
    return result, report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "info":
        report = info()
        print(json.dumps(report)) if args.json else _print_info(report)
    elif args.command == "train":
        from pathlib import Path

        if args.epochs is not None and args.epochs < 1:
            print(f"workbench train: --epochs must be at least 1, got {args.epochs}", file=sys.stderr)
            return 2
        meta = train_checkpoint(args.name, Path(args.out) if args.out else None, progress=not args.json, epochs=args.epochs)
        if args.json:
            print(json.dumps(meta))
        else:
            print(f"{args.name}: test accuracy {meta['test_accuracy']:.2%}, {meta['parameters']:,} parameters")
    elif args.command == "prune":
        try:
            result, report = prune_command(args)
        except ValueError as error:
            print(f"workbench prune: {error}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(report))
        else:
            print(f"{args.model}: {args.criterion} × {args.pattern} × {args.scope}")
            print(result)
            print(f"accuracy {report['accuracy_before']:.2%} → {report['accuracy_after']:.2%}")
            if args.out:
                print(f"saved plain state_dict to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `workbench` command: list datasets and models, regenerate shipped checkpoints.

Example:
    >>> main(["info", "--json"])  # doctest: +ELLIPSIS
    {"datasets": ...
    0
"""

from __future__ import annotations

import argparse
import json
import sys

from .data import DATASETS, load_dataset
from .models import MODELS, build_model, count_parameters
from .zoo import RECIPES, checkpoint_info, train_checkpoint


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
    return parser


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
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``workbench report MODEL``: one self-contained HTML page about a pruned model (``report_page``).

Example:
    >>> parse_sparsities("0, 0.5,0.9")
    (0.0, 0.5, 0.9)
"""

from __future__ import annotations

import argparse

from .criteria import CRITERIA
from .models import MODELS
from .patterns import pattern_names
from .report_page import write_report
from .reports import SCOPES


def parse_sparsities(text: str) -> tuple[float, ...]:
    """A comma-separated list of sparsities, as argparse's type."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sparsities separated by commas, e.g. 0,0.5,0.9; got {text!r}"
        ) from None


def add_report_parser(commands) -> None:
    """The ``report`` subcommand's arguments."""
    parser = commands.add_parser("report", help="write one self-contained HTML page about a pruned model")
    parser.add_argument("model", help=f"a shipped model ({', '.join(MODELS)}) or a file written by wb.save_sparse")
    parser.add_argument("--pattern", default="unstructured", help=f"one of: {', '.join(pattern_names())}")
    parser.add_argument(
        "--sparsity",
        type=float,
        default=None,
        help="fraction of weights to prune, in [0, 1) (default 0.5 for a shipped model; a file is reported as saved)",
    )
    parser.add_argument("--criterion", default="magnitude", choices=list(CRITERIA), help="importance criterion")
    parser.add_argument("--scope", default="local", choices=SCOPES)
    parser.add_argument(
        "--exclude", action="append", default=[], help="module name or glob to leave dense (repeatable)"
    )
    parser.add_argument("--fine-tune-epochs", type=int, default=0, help="fine-tune after pruning (default 0)")
    parser.add_argument(
        "--tradeoff-epochs", type=int, default=None, help="fine-tuning of each trade-off point (default: as above)"
    )
    parser.add_argument(
        "--tradeoff-sparsities",
        type=parse_sparsities,
        default=None,
        help="the trade-off chart's grid, e.g. 0,0.5,0.9 (default; the chosen sparsity joins it)",
    )
    parser.add_argument("--device", default="auto", help="where latency is timed: auto (CUDA when present), cpu, cuda")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads while timing (default 1; 0: torch's)")
    parser.add_argument("--out", default="report.html", help="the HTML file to write (default report.html)")


def report_command(args: argparse.Namespace) -> int:
    """Write the report ``args`` ask for and say where and how large."""
    path = write_report(
        args.model,
        args.out,
        criterion=args.criterion,
        pattern=args.pattern,
        scope=args.scope,
        sparsity=args.sparsity,
        exclude=tuple(args.exclude),
        fine_tune_epochs=args.fine_tune_epochs,
        tradeoff_epochs=args.tradeoff_epochs,
        tradeoff_sparsities=args.tradeoff_sparsities,
        device=args.device,
        threads=args.threads or None,
    )
    print(f"workbench report: wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0

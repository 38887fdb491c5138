"""``workbench study CONFIG``: run a study config here, on a process pool or on a Dask cluster, and write its table.

Example:
    >>> with open_executor("inprocess") as executor:
    ...     print(executor)
    None
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .grid import read_config
from .run import DEFAULT_CACHE, plan_study, study

EXECUTORS = ("inprocess", "processes", "dask")


def add_study_parser(commands) -> None:
    """The ``study`` subcommand's arguments."""
    parser = commands.add_parser("study", help="run a compression study (a TOML or JSON grid) into a table")
    parser.add_argument("config", help="TOML or JSON file: a [grid] table, optionally [recipe], data, imports")
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="inprocess",
        help="where points run: this process, a pool of processes, or Dask (a local cluster or --scheduler)",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes or local Dask workers (default: CPUs)")
    parser.add_argument("--scheduler", default=None, help="with --executor dask: address of a running scheduler")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help=f"folder of finished points (default {DEFAULT_CACHE})")
    parser.add_argument("--out", default=None, help="write the table to this CSV file")


@contextlib.contextmanager
def open_executor(kind: str, workers: int | None = None, scheduler: str | None = None):
    """The executor ``kind`` names (None for "inprocess"), shut down on exit.

    "processes": a ``ProcessPoolExecutor`` of ``workers`` spawned processes. "dask": an executor of a
    ``distributed.Client``, connected to ``scheduler`` or to a local cluster of ``workers`` single-threaded
    worker processes (each restarted by its nanny if it dies).
    """
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if scheduler is not None and kind != "dask":
        raise ValueError("--scheduler is the address of a Dask scheduler: use it with --executor dask")
    workers = workers or os.cpu_count() or 1
    if kind == "inprocess":
        yield None
    elif kind == "processes":
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield pool
    else:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("--executor dask needs Dask's distributed: pip install 'workbench[dask]'") from None
        with contextlib.ExitStack() as stack:
            if scheduler is None:
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
                scheduler = stack.enter_context(cluster)
            yield stack.enter_context(Client(scheduler)).get_executor()


def study_command(args: argparse.Namespace) -> int:
    """Run the study ``args`` name and print what happened in one line; exit status 1 when a point failed."""
    config = read_config(args.config)
    if args.out and not Path(args.out).parent.is_dir():
        raise ValueError(f"cannot write --out {args.out}: folder {Path(args.out).parent} does not exist")
    plan_study(config.grid, config.data, config.recipe, config.imports)  # refuse a bad study before any worker starts
    start = time.perf_counter()
    with open_executor(args.executor, args.workers, args.scheduler) as executor:
        table = study(
            config.grid,
            config.data,
            executor=executor,
            cache=args.cache,
            recipe=config.recipe,
            imports=config.imports,
        )
    seconds = time.perf_counter() - start
    if args.out:
        table.to_csv(args.out, index=False)
    counts = table["status"].value_counts()
    computed = table.attrs["computed"]
    print(
        f"workbench study: {len(table)} points ({computed} computed, {len(table) - computed} from the cache) "
        f"in {seconds:.1f} s on {args.executor}: {counts.get('ok', 0)} ok, "
        f"{counts.get('not applicable', 0)} not applicable, {counts.get('error', 0)} errors"
        + (f"; table written to {args.out}" if args.out else "")
    )
    for error in table.loc[table["status"] == "error", "error"].unique()[:3]:
        print(f"error: {error}")
    return 1 if counts.get("error", 0) else 0

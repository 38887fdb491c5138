"""Where sparse kernels start to pay: one Linear layer timed dense and as CSR across sparsities, sizes and batches.

A dense matrix product does the same work whatever the zeros; a CSR product does work per stored entry but
reads an index for each and runs a kernel far less tuned than dense BLAS. So below some sparsity CSR is slower,
above it faster; ``csr_crossover`` measures where, side by side (interleaved, one layer at a time).

Example:
    >>> table = csr_crossover(sizes=(64,), batch_sizes=(8,), sparsities=(0.5, 0.99), min_run_time=0.01, threads=1)
    >>> list(table.columns)
    ['size', 'batch', 'sparsity', 'dense_ms', 'csr_ms', 'speedup', 'threads']
    >>> len(table), bool((table["speedup"] > 0).all())
    (2, True)
"""

from __future__ import annotations

import torch
from torch import nn

from .execution import SparseLinear
from .measure import compare_latency
from .reports import check_sparsity


def _positive_integers(name: str, values) -> tuple[int, ...]:
    values = tuple(values)
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"{name} must be positive integers, got {values!r}")
    return values


def csr_crossover(
    sizes=(256, 1024),
    batch_sizes=(1, 64),
    sparsities=(0.5, 0.7, 0.8, 0.9, 0.95, 0.99),
    *,
    threads: int | None = None,
    min_run_time: float = 0.1,
    seed: int = 0,
):
    """Latency of a size × size Linear (random unstructured mask) run dense vs CSR, per size, batch and sparsity.

    Returns a pandas DataFrame: size, batch, sparsity, dense_ms, csr_ms, speedup (dense / CSR: above 1 CSR is
    faster) and the threads timed with. Per size and batch, the dense layer and every sparsity's CSR layer are timed
    interleaved (``compare_latency``), on the CPU, so a busy machine slows them alike.
    """
    import pandas as pd

    sizes, batch_sizes = _positive_integers("sizes", sizes), _positive_integers("batch_sizes", batch_sizes)
    sparsities = tuple(check_sparsity(s) for s in sparsities)
    if not sparsities:
        raise ValueError("sparsities must name at least one sparsity in [0, 1]")
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for size in sizes:
        dense = nn.Linear(size, size)  # BLAS does the same work whatever the zeros: one dense layer per size
        models = {"dense": dense}
        for sparsity in sparsities:
            masked = nn.Linear(size, size)
            with torch.no_grad():
                masked.weight.copy_(dense.weight * (torch.rand(size, size, generator=generator) >= sparsity))
                masked.bias.copy_(dense.bias)
            models[sparsity] = SparseLinear(masked, "csr")
        for batch in batch_sizes:
            inputs = torch.randn(batch, size, generator=generator)
            timed = compare_latency(models, inputs, device="cpu", threads=threads, min_run_time=min_run_time)
            dense_ms = timed["dense"].median_ms
            for sparsity in sparsities:
                csr_ms = timed[sparsity].median_ms
                rows.append(
                    {
                        "size": size,
                        "batch": batch,
                        "sparsity": sparsity,
                        "dense_ms": dense_ms,
                        "csr_ms": csr_ms,
                        "speedup": dense_ms / csr_ms,
                        "threads": timed["dense"].threads,
                    }
                )
    return pd.DataFrame(rows)


def crossover_sparsity(table) -> dict[tuple[int, int], float | None]:
    """Per (size, batch): the lowest measured sparsity from which CSR stays faster than dense (None: never)."""
    crossings = {}
    for (size, batch), group in table.groupby(["size", "batch"]):
        group = group.sort_values("sparsity")
        faster = (group["speedup"] > 1).tolist()
        first = next((i for i in range(len(faster)) if all(faster[i:])), None)
        crossings[(int(size), int(batch))] = None if first is None else float(group["sparsity"].iloc[first])
    return crossings

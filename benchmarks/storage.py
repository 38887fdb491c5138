"""Storage: bytes of a pruned model as a dense torch.save, as its masked state_dict, as a sparse file (the best
encoding and each one) and at the entropy bound, all as shares of the dense file; and how long saving and loading
take, next to torch.save / torch.load of the dense state_dict.

The shipped mlp, cnn and transformer are pruned with ``wb.prune`` defaults (magnitude, local scope) at unstructured
50/80/90/95/99 %, 2:4 (the cnn's 1-channel stem left dense: it has no groups of 4 inputs) and per-layer filter
(neuron) 50 %. Sizes come from ``wb.storage_report``; times are medians of ``--repeats`` calls, to a temporary folder.

Run: .venv/bin/python benchmarks/storage.py [--repeats N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch

import workbench as wb
from workbench.storage_encodings import ENCODINGS

MODELS = ("mlp", "cnn", "transformer")
PRUNINGS = {
    **{f"unstructured {s:.0%}": {"sparsity": s} for s in (0.5, 0.8, 0.9, 0.95, 0.99)},
    "2:4": {"sparsity": None, "pattern": "2:4"},
    "filter 50%": {"sparsity": 0.5, "pattern": "filter"},
}


def median_seconds(repeats: int, call, *args, **kwargs) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rows(name: str, folder: Path, repeats: int):
    dense = wb.pretrained(name)
    dense_path = folder / f"{name}.pt"
    torch_save = median_seconds(repeats, torch.save, dense.state_dict(), dense_path)
    torch_load = median_seconds(repeats, torch.load, dense_path, weights_only=True)
    for label, options in PRUNINGS.items():
        model = copy.deepcopy(dense)
        exclude = ("stem.0",) if name == "cnn" and options.get("pattern") == "2:4" else ()
        wb.prune(model, exclude=exclude, **options)
        report = wb.storage_report(model)
        path = folder / f"{name}.sparse"
        save = median_seconds(repeats, wb.save_sparse, model, path)
        load = median_seconds(repeats, wb.load_sparse, path)
        ratios = [report.ratio(file) if report.files[file] else None for file in report.files]
        yield label, report.best, ratios, save, load, torch_save, torch_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (median)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; bytes as % of the dense torch.save file")
    files = ["torch.save masked", "sparse (best)", *(f"sparse {encoding}" for encoding in ENCODINGS), "entropy bound"]
    with tempfile.TemporaryDirectory() as folder:
        for name in MODELS:
            print(f"\n### {name}\n")
            print("| pruning | " + " | ".join(files) + " | save ms | load ms | torch.save ms | torch.load ms |")
            print("|---" * (len(files) + 5) + "|")
            for label, best, ratios, save, load, torch_save, torch_load in rows(name, Path(folder), args.repeats):
                _, masked, auto, *encodings, bound = ratios
                sizes = {"auto": auto, **dict(zip(ENCODINGS, encodings))}
                cells = [masked, sizes[best], *encodings, bound]
                shown = [f"{ratio:.1%}" if ratio is not None else "—" for ratio in cells]
                shown[1] += f" ({best})"
                times = [f"{1000 * seconds:.1f}" for seconds in (save, load, torch_save, torch_load)]
                print(f"| {label} | " + " | ".join(shown + times) + " |")


if __name__ == "__main__":
    main()

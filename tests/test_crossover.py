"""The CSR crossover: measured side by side, read off honestly, drawn; bad grids refused in one line."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.crossover import crossover_sparsity, csr_crossover
from workbench.viz.execution import plot_crossover


def test_the_table_has_one_row_per_size_batch_and_sparsity_with_one_dense_time_each():
    table = csr_crossover(sizes=(32, 64), batch_sizes=(1, 4), sparsities=(0.0, 0.9), min_run_time=0.01, threads=1)
    assert len(table) == 8 and set(table["threads"]) == {1}
    for _, group in table.groupby(["size", "batch"]):
        assert group["dense_ms"].nunique() == 1, "one dense layer per size, timed alongside every CSR layer"
    assert (table["speedup"] == table["dense_ms"] / table["csr_ms"]).all()


def test_crossover_is_where_csr_stays_faster():
    table = pd.DataFrame(
        {
            "size": [8] * 4 + [16] * 3,
            "batch": [1] * 7,
            "sparsity": [0.5, 0.8, 0.9, 0.99, 0.5, 0.9, 0.99],
            "speedup": [0.5, 1.2, 0.9, 3.0, 0.2, 0.4, 0.8],
        }
    )
    assert crossover_sparsity(table) == {(8, 1): 0.99, (16, 1): None}  # a dip at 0.9 means 0.8 does not count


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sizes": ()}, "sizes must be positive integers"),
        ({"batch_sizes": (0,)}, "batch_sizes must be positive integers"),
        ({"sparsities": (1.5,)}, "sparsity"),
        ({"sparsities": ()}, "at least one sparsity"),
    ],
)
def test_bad_grids_are_refused_in_one_line(arguments, message):
    with pytest.raises(ValueError, match=message) as error:
        csr_crossover(min_run_time=0.01, **arguments)
    assert "\n" not in str(error.value)


def test_the_figure_draws_one_line_per_layer_and_batch_and_marks_break_even():
    table = pd.DataFrame({"size": [8, 8, 16], "batch": [1, 1, 1], "sparsity": [0.5, 0.9, 0.5], "speedup": [1, 2, 3]})
    ax = plot_crossover(table, marker_sparsity=0.9).axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels[:3] == ["8×8, batch 1", "16×16, batch 1", "as fast as dense"]
    assert ax.lines[-1].get_xdata()[0] == 90 and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="empty"):
        plot_crossover(table.iloc[:0])

"""When to prune: every method reaches the sparsity on the same budget; bad arguments are refused."""

from __future__ import annotations

import pytest

from workbench.timing import METHODS, compare_timing


def test_every_method_reaches_the_sparsity(digits):
    rows = compare_timing("mlp", digits, sparsity=0.8, epochs=2)
    assert [row["method"] for row in rows] == list(METHODS)
    for row in rows:
        assert row["sparsity"] == pytest.approx(0.8, abs=1e-3), row["method"]
        assert 0.0 <= row["accuracy"] <= 1.0 and row["seconds"] > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [({"epochs": 1}, "epochs"), ({"sparsity": 1.2}, "sparsity"), ({"methods": ("later",)}, "unknown method")],
)
def test_bad_comparisons_are_refused(digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare_timing("mlp", digits, **kwargs)

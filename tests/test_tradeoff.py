"""The trade-off table: every point pruned exactly, every mode computing the same function, files sized honestly,
and a Pareto front that nothing beats."""

import pandas as pd
import pytest
import torch

import workbench as wb
from tests.helpers import assert_same_state, state_copy
from workbench.tradeoff import pareto_points, recorded_tradeoff, tradeoff


@pytest.fixture(scope="module")
def table():
    return tradeoff(
        "mlp",
        patterns=("unstructured", "2:4", "filter"),
        sparsities=(0.0, 0.9),
        modes=("dense", "masked", "csr", "semi_structured", "shrunk"),
        fine_tune_epochs=1,
        min_run_time=0.02,
    )


def test_each_point_reaches_its_sparsity_and_every_mode_computes_the_same_function(table):
    unstructured = table[table["pattern"] == "unstructured"]
    assert set(unstructured["achieved_sparsity"].round(6)) == {0.0, 0.9}
    assert set(table.loc[table["pattern"] == "2:4", "sparsity"]) == {0.0, 0.5}  # N:M fixes its sparsity
    available = table[table["available"]]
    assert (available["max_abs_diff"] < 1e-4).all()
    assert (available.loc[available["mode"] == "dense", "relative_latency"] == 1).all()
    one_point = table.groupby(["pattern", "sparsity"])["accuracy"].nunique()
    assert (one_point == 1).all()  # every mode of a point is the same fine-tuned model


def test_accuracy_says_whether_it_was_fine_tuned(table):
    dense = wb.evaluate(wb.pretrained("mlp"), wb.load_dataset("digits").test)
    at_zero = table[table["sparsity"] == 0]
    assert (at_zero["fine_tune_epochs"] == 0).all() and (at_zero["accuracy"] == dense).all()
    pruned = table[table["sparsity"] > 0]
    assert (pruned["fine_tune_epochs"] == 1).all()
    assert (pruned["accuracy"] != pruned["accuracy_pruned"]).any()


def test_files_are_what_each_mode_ships(table):
    point = table[(table["pattern"] == "unstructured") & (table["sparsity"] == 0.9)].set_index("mode")
    assert point.loc["dense", "file_share"] == 1
    assert 1.2 < point.loc["masked", "file_share"] < 1.3  # dense originals plus one byte of mask per weight
    assert point.loc["csr", "file_share"] <= 0.13  # the storage target at 90 %
    shrunk = table[(table["pattern"] == "filter") & (table["sparsity"] == 0.9)].set_index("mode")
    assert shrunk.loc["shrunk", "file_share"] < 0.15
    assert shrunk.loc["shrunk", "file_bytes"] < shrunk.loc["dense", "file_bytes"]


def test_modes_that_cannot_run_here_are_rows_with_the_reason(table):
    if torch.cuda.is_available():
        pytest.skip("2:4 runs on this machine's GPU")
    two_four = table[table["mode"] == "semi_structured"]
    assert not two_four["available"].any()
    assert two_four["note"].str.contains("CUDA").all()
    assert two_four["latency_ms"].isna().all() and two_four["file_bytes"].isna().all()


def test_pareto_points_are_beaten_by_none_and_beat_the_rest(table):
    for x in ("relative_latency", "file_share"):
        front = pareto_points(table, x)
        points = table[table["available"]]
        for _, point in front.iterrows():
            better = points[(points[x] < point[x]) & (points["accuracy"] > point["accuracy"])]
            assert better.empty
        for _, point in points.iterrows():
            covered = front[(front[x] <= point[x]) & (front["accuracy"] >= point["accuracy"])]
            assert not covered.empty


def test_a_users_model_is_left_untouched_and_needs_its_data():
    model = wb.pretrained("mlp")
    before = state_copy(model)
    data = wb.load_dataset("digits")
    table = tradeoff(model, data, patterns=("filter",), sparsities=(0.5,), modes=("shrunk",), fine_tune_epochs=0)
    assert_same_state(before, state_copy(model))
    assert table.loc[0, "model"] == "mlp" and table.loc[0, "available"]
    with pytest.raises(ValueError, match="pass data="):
        tradeoff(torch.nn.Sequential(torch.nn.Linear(4, 2)))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"modes": ("dense", "fast")}, "unknown modes"),
        ({"sparsities": (0.5, 1.0)}, r"in \[0, 1\)"),
        ({"patterns": ("diagonal",)}, "pattern"),
        ({"fine_tune_epochs": -1}, "fine_tune_epochs"),
    ],
)
def test_bad_settings_are_refused_before_any_work(options, message):
    with pytest.raises(ValueError, match=message):
        tradeoff("mlp", **options)


def test_the_shipped_table_holds_every_model_pattern_and_mode():
    table = recorded_tradeoff()
    assert set(table["model"]) == {"mlp", "cnn"}
    assert set(table["pattern"]) == {"unstructured", "2:4", "filter"}
    assert isinstance(table, pd.DataFrame) and table["available"].dtype == bool
    shipped = table[table["available"]]
    assert (shipped["max_abs_diff"] < 1e-4).all()
    assert (shipped.loc[shipped["mode"] == "dense", "file_share"] == 1).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_devices_measure_the_gpu_too():
    table = tradeoff("mlp", patterns=("2:4",), modes=("dense", "semi_structured"), fine_tune_epochs=0)
    assert {device.split(":")[0] for device in table["device"]} == {"cpu", "cuda"}
    on_gpu = table[table["device"].str.startswith("cuda") & (table["sparsity"] == 0.5)].set_index("mode")
    assert on_gpu.loc["dense", "available"]
    two_four = on_gpu.loc["semi_structured"]
    assert (two_four["available"] and two_four["max_abs_diff"] < 0.05) or two_four["note"]

"""``wb.study``: grids checked before any work, a tidy table, a cache that resumes, failures that stay in their row,
the same numbers in-process, on a process pool and on a local Dask cluster, dying workers, the CLI and the figures."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
import pytest

import workbench as wb
import workbench.studies.run as study_run
from workbench.cli import main
from workbench.criteria import CRITERIA
from workbench.studies import (
    METRICS,
    SETTINGS,
    DatasetRef,
    best_methods,
    check_grid,
    expand_grid,
    pareto_front,
    read_config,
    run_point,
    seed_means,
)
from workbench.studies.command import open_executor
from workbench.viz.study import plot_accuracy_vs_sparsity, plot_pareto

FAST = {"latency_seconds": 0.005}  # a recipe that times each point briefly
PLUGIN = "study_test_plugin"
PLUGIN_SOURCE = '''
"""Test-only criteria for tests/test_study.py, registered on import (workers import it through ``imports``)."""
import os

from workbench.criteria.registry import register


@register("failing", needs_data=False, description="test only: always raises")
def failing(model, names, data):
    raise RuntimeError("scores went missing\\non two lines")


@register("exit_process", needs_data=False, description="test only: the worker process running it exits")
def exit_process(model, names, data):
    if os.getpid() == int(os.environ["STUDY_TEST_PARENT"]):
        raise RuntimeError("exit_process only ends worker processes, never the test process")
    os._exit(3)
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The plugin module, importable here and in every worker process started after this fixture."""
    folder = tmp_path_factory.mktemp("plugin")
    (folder / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)
    patch = pytest.MonkeyPatch()
    patch.syspath_prepend(str(folder))
    patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))
    patch.setenv("STUDY_TEST_PARENT", str(os.getpid()))
    yield PLUGIN
    for name in ("failing", "exit_process"):
        CRITERIA.pop(name, None)
    sys.modules.pop(PLUGIN, None)
    patch.undo()


@pytest.fixture(scope="module")
def dask_executor(plugin):
    """An executor of a local Dask cluster: 2 single-threaded worker processes, one task each at a time, and a point
    whose worker dies is given up at once (KilledWorker) instead of being retried on the other worker."""
    distributed = pytest.importorskip("distributed")
    import dask

    settings = {"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0}
    with (
        dask.config.set(settings),
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client.get_executor()


@pytest.fixture
def calls(monkeypatch):
    """The points run in this process: each call of ``run_point`` appends its settings."""
    seen = []

    def counting(point, *args):
        seen.append(point)
        return real(point, *args)

    real = study_run.run_point
    monkeypatch.setattr(study_run, "run_point", counting)
    return seen


GRID = {"model": "mlp", "criterion": "magnitude", "sparsity": [0.5], "epochs": 0}
BAD_GRIDS = [
    ({**GRID, "model": ["resnet"]}, "unknown model 'resnet'; choose one of mlp, cnn"),
    ({**GRID, "criterion": ["magnitud"]}, "unknown criterion 'magnitud'; choose one of magnitude"),
    ({**GRID, "pattern": ["diagonal"]}, "unknown pattern 'diagonal'; choose one of: unstructured"),
    ({**GRID, "scope": ["everywhere"]}, "unknown scope 'everywhere'; choose one of 'local', 'global'"),
    ({**GRID, "schedule": ["gradual"]}, "unknown schedule 'gradual'; choose one of 'one-shot', 'iterative'"),
    ({**GRID, "sparsity": [0.5, 1.0]}, "sparsity must be in [0, 1) (the fraction of weights to prune), got 1.0"),
    ({**GRID, "sparsity": [-0.1]}, "sparsity must be in [0, 1)"),
    ({**GRID, "sparsity": []}, "grid axis 'sparsity' is empty"),
    ({**GRID, "seed": [0, 0]}, "grid axis 'seed' repeats 0"),
    ({**GRID, "seed": [True]}, "grid axis 'seed' takes integers >= 0, got True"),
    ({**GRID, "epochs": [-1]}, "grid axis 'epochs' takes integers >= 0, got -1"),
    ({**GRID, "lr": [0.1]}, "unknown grid axis 'lr'; the axes are: model, criterion"),
    ({"model": "mlp", "criterion": "l1"}, "grid needs the axis 'sparsity'"),
    (["mlp"], "grid must be a dict of axis → values"),
]


@pytest.mark.parametrize("grid,message", BAD_GRIDS, ids=[message.split(";")[0] for _, message in BAD_GRIDS])
def test_a_bad_grid_fails_in_one_line_before_any_point_runs(tmp_path, calls, grid, message):
    with pytest.raises(ValueError) as error:
        wb.study(grid, cache=tmp_path, progress=False)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert calls == [] and not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "options,message",
    [
        ({"data": "digits", "grid": {**GRID, "model": "cnn1d"}}, "model 'cnn1d' was trained on mnist1d, not digits"),
        ({"data": "imagenet"}, "unknown dataset 'imagenet'"),
        ({"recipe": {"lr": 0}}, "recipe lr must be a positive float, got 0"),
        ({"recipe": {"epochs": 2}}, "recipe takes no 'epochs'; its fields are: lr, batch_size"),
        ({"imports": ["no_such_module"]}, "cannot import 'no_such_module' (named in imports)"),
    ],
)
def test_bad_data_recipe_or_imports_fail_before_any_point_runs(tmp_path, calls, options, message):
    grid = options.pop("grid", GRID)
    with pytest.raises(ValueError) as error:
        wb.study(grid, cache=tmp_path, progress=False, **options)
    assert message in str(error.value)
    assert calls == [] and not any(tmp_path.iterdir())


def test_the_table_is_tidy_one_row_per_point_in_grid_order(tmp_path, digits):
    grid = {
        "model": ["mlp"],
        "criterion": ["magnitude", "bn_scale"],
        "pattern": ["unstructured", "filter"],
        "schedule": ["one-shot", "iterative"],
        "sparsity": [0.5],
    }
    table = wb.study(grid, data=digits, cache=tmp_path, recipe={**FAST, "rounds": 2}, progress=False)
    assert list(table.columns) == [*SETTINGS, *METRICS]
    expected = [{"dataset": "digits", **point} for point in expand_grid(check_grid(grid))]
    assert table[list(SETTINGS)].to_dict("records") == [{k: p[k] for k in SETTINGS} for p in expected]
    done = table[table["criterion"] == "magnitude"].set_index(["pattern", "schedule"])
    assert (done["status"] == "ok").all() and (done["error"] == "").all() and (done["threads"] == 1).all()
    assert (done["accuracy_finetuned"] > 0.85).all()
    assert (done["accuracy_dense"] == wb.evaluate(wb.pretrained("mlp"), digits.test)).all()
    assert done.loc[("unstructured", "one-shot"), "nonzeros"] < 0.52 * done.loc[("unstructured", "one-shot"), "params"]
    assert done.loc[("filter", "one-shot"), "shrunk"] and not done.loc[("unstructured", "one-shot"), "shrunk"]
    assert done.loc[("filter", "one-shot"), "params"] < 0.4 * done.loc[("unstructured", "one-shot"), "params"]
    assert done.loc[("filter", "one-shot"), "bytes"] < done.loc[("unstructured", "one-shot"), "bytes"]
    unstructured = done.loc[("unstructured", "one-shot")]
    assert unstructured["sparse_bytes"] < unstructured["bytes"] / 1.5
    assert (done["latency_ms"] > 0).all() and (done["latency_batch"] == 32).all()
    relative = done["latency_ms"] / done["latency_dense_ms"]
    assert done["relative_latency"].tolist() == pytest.approx(relative.tolist())
    refused = table[table["criterion"] == "bn_scale"]
    assert (refused["status"] == "not applicable").all() and refused["accuracy_finetuned"].isna().all()
    assert refused["error"].str.contains("BatchNorm").all() and not refused["error"].str.contains("\n").any()
    table.to_csv(tmp_path / "table.csv", index=False)
    pd.testing.assert_frame_equal(wb.load_study(tmp_path / "table.csv"), table)


def test_an_interrupted_study_resumes_computing_only_the_missing_points(tmp_path, calls, monkeypatch):
    grid = {**GRID, "sparsity": [0.3, 0.5, 0.7, 0.9]}
    counting = study_run.run_point

    def interrupted(point, *args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        return counting(point, *args)

    monkeypatch.setattr(study_run, "run_point", interrupted)
    with pytest.raises(KeyboardInterrupt):
        wb.study(grid, cache=tmp_path, recipe=FAST, progress=False)
    assert len(calls) == 2 and len(list(tmp_path.glob("*.json"))) == 2 and not list(tmp_path.glob(".*"))
    monkeypatch.setattr(study_run, "run_point", counting)
    resumed = wb.study(grid, cache=tmp_path, recipe=FAST, progress=False)
    assert [point["sparsity"] for point in calls] == [0.3, 0.5, 0.7, 0.9]  # the first two ran once, before the stop
    assert resumed.attrs["computed"] == 2 and (resumed["status"] == "ok").all()
    again = wb.study(grid, cache=tmp_path, recipe=FAST, progress=False)
    assert len(calls) == 4 and again.attrs["computed"] == 0
    pd.testing.assert_frame_equal(again, resumed)
    other = wb.study(grid, cache=tmp_path, recipe={**FAST, "lr": 1e-3}, progress=False)  # another recipe: new keys
    assert other.attrs["computed"] == 4


def test_a_failing_point_is_a_row_with_its_error_and_the_rest_go_on(tmp_path, calls, plugin):
    grid = {**GRID, "criterion": ["failing", "magnitude"], "sparsity": [0.5, 0.9]}
    table = wb.study(grid, cache=tmp_path, recipe=FAST, imports=[plugin], progress=False)
    failed, done = table[table["criterion"] == "failing"], table[table["criterion"] == "magnitude"]
    assert (failed["status"] == "error").all() and (done["status"] == "ok").all()
    assert (failed["error"] == "RuntimeError: scores went missing on two lines").all()
    assert len(list(tmp_path.glob("*.json"))) == 2  # errors are not cached: a rerun tries them again
    rerun = wb.study(grid, cache=tmp_path, recipe=FAST, imports=[plugin], progress=False)
    assert rerun.attrs["computed"] == 2 and len(calls) == 6


def test_every_executor_gives_the_same_numbers_for_the_same_seeds(tmp_path, plugin, dask_executor):
    grid = {
        **GRID,
        "criterion": "random",
        "pattern": ["unstructured", "filter"],
        "sparsity": 0.6,
        "seed": [0, 1],
        "epochs": 1,
    }
    exact = ["accuracy_pruned", "accuracy_finetuned", "achieved_sparsity", "params", "nonzeros", "flops", "bytes"]
    tables = {"inprocess": wb.study(grid, cache=tmp_path / "inprocess", recipe=FAST, progress=False)}
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        tables["processes"] = wb.study(grid, executor=pool, cache=tmp_path / "processes", recipe=FAST, progress=False)
    tables["dask"] = wb.study(grid, executor=dask_executor, cache=tmp_path / "dask", recipe=FAST, progress=False)
    for name, table in tables.items():
        assert (table["status"] == "ok").all(), (name, table["error"].tolist())
        pd.testing.assert_frame_equal(table[exact], tables["inprocess"][exact], check_exact=True, obj=name)
    random = tables["inprocess"][tables["inprocess"]["criterion"] == "random"]
    assert random.groupby("pattern")["accuracy_pruned"].nunique().eq(2).all()  # the seeds draw different masks


def test_a_worker_that_dies_on_dask_loses_only_its_point(tmp_path, plugin, dask_executor):
    grid = {**GRID, "criterion": ["exit_process", "magnitude"], "sparsity": [0.5]}
    table = wb.study(grid, executor=dask_executor, cache=tmp_path, recipe=FAST, imports=[plugin], progress=False)
    died, done = table.iloc[0], table.iloc[1]
    assert died["status"] == "error" and died["error"].startswith("KilledWorker") and "\n" not in died["error"]
    assert done["status"] == "ok" and done["accuracy_pruned"] > 0.9
    after = wb.study(GRID, executor=dask_executor, cache=tmp_path / "after", recipe=FAST, progress=False)
    assert (after["status"] == "ok").all()  # the nanny restarted the worker; the cluster goes on


def test_a_process_that_dies_breaks_the_pool_and_a_rerun_resumes(tmp_path, plugin, request):
    grid = {**GRID, "criterion": ["magnitude", "exit_process", "l1"], "sparsity": [0.5]}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        table = wb.study(grid, executor=pool, cache=tmp_path, recipe=FAST, imports=[plugin], progress=False)
    calls = request.getfixturevalue("calls")  # counts from here: a pool cannot pickle the counting wrapper
    lost = table[table["status"] == "error"]
    assert {"exit_process", "l1"} <= set(lost["criterion"]) and lost["error"].str.startswith("BrokenProcessPool").all()
    assert (table.loc[table["status"] != "error", "status"] == "ok").all()
    resumed = wb.study({**grid, "criterion": ["magnitude", "l1"]}, cache=tmp_path, recipe=FAST, progress=False)
    assert (resumed["status"] == "ok").all()
    assert [point["criterion"] for point in calls] == [c for c in lost["criterion"] if c != "exit_process"]


def _config(tmp_path, text: str):
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(text))
    return str(path)


CONFIG = """
    [grid]
    model = ["mlp"]
    criterion = ["magnitude"]
    pattern = ["unstructured", "filter"]
    sparsity = [0.5]
    epochs = [0]

    [recipe]
    latency_seconds = 0.005
"""


def test_cli_study_writes_the_table_and_a_rerun_reads_the_cache(tmp_path, capsys):
    argv = ["study", _config(tmp_path, CONFIG), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "t.csv")]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "2 points (2 computed, 0 from the cache)" in out[0] and "2 ok" in out[0], out
    table = wb.load_study(tmp_path / "t.csv")
    assert table["pattern"].tolist() == ["unstructured", "filter"] and table["shrunk"].tolist() == [False, True]
    assert main(argv) == 0
    assert "(0 computed, 2 from the cache)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(wb.load_study(tmp_path / "t.csv"), table)


@pytest.mark.parametrize(
    "config,extra,message",
    [
        (CONFIG.replace('"magnitude"', '"magnitud"'), [], "unknown criterion 'magnitud'"),
        (CONFIG.replace("[0.5]", "[1.5]"), [], "sparsity must be in [0, 1) (the fraction of weights to prune)"),
        (CONFIG.replace("[grid]", "[grids]"), [], "needs a [grid] table"),
        (CONFIG + "\n[extra]\n", [], "has no section 'extra'; it takes: grid, recipe, data, imports"),
        (CONFIG.replace("= [0]", "= [0"), [], "is not valid TOML"),
        (CONFIG, ["--workers", "0"], "--workers must be at least 1, got 0"),
        (CONFIG, ["--scheduler", "tcp://127.0.0.1:1"], "--scheduler is the address of a Dask scheduler"),
        (CONFIG, ["--out", "/no/such/folder/t.csv"], "cannot write --out /no/such/folder/t.csv"),
    ],
)
def test_cli_study_refuses_a_bad_config_in_one_line_with_status_2(tmp_path, capsys, config, extra, message):
    cache = tmp_path / "cache"
    assert main(["study", _config(tmp_path, config), "--cache", str(cache), *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err, captured.err
    assert not cache.exists()


def test_open_executor_gives_a_pool_of_processes_and_shuts_it_down():
    with open_executor("processes", workers=1) as pool:
        assert pool.submit(os.getpid).result() != os.getpid()
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(os.getpid)


def test_cli_study_refuses_a_missing_config(tmp_path, capsys):
    assert main(["study", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read study config" in capsys.readouterr().err


def test_the_shipped_study_is_its_config_run_by_this_code():
    table = wb.load_study("compression")
    config = read_config(study_run.SHIPPED / "compression.toml")
    points = expand_grid(check_grid(config.grid))
    assert table.drop(columns="dataset")[list(points[0])].to_dict("records") == points
    assert (table["status"] != "error").all()
    assert set(table.loc[table["status"] == "not applicable", "criterion"]) == {"bn_scale"}
    shipped = table.iloc[40]  # mlp, l1, filter, 60 %, seed 0: recomputed here, it gives the same numbers
    row = run_point(points[40], {**dataclasses.asdict(config.recipe), **FAST}, DatasetRef("digits"))
    assert (row["criterion"], row["pattern"], row["params"]) == (shipped["criterion"], "filter", shipped["params"])
    assert row["accuracy_finetuned"] == pytest.approx(shipped["accuracy_finetuned"], abs=0.01)


def test_pareto_front_keeps_what_nothing_beats():
    table = pd.DataFrame({"latency_ms": [1, 2, 2, 3, 4], "accuracy_finetuned": [0.5, 0.9, 0.7, 0.8, 0.95]})
    front = pareto_front(table, by=())
    assert front.to_dict("list") == {"latency_ms": [1, 2, 4], "accuracy_finetuned": [0.5, 0.9, 0.95]}


def test_best_methods_names_the_best_criterion_per_sparsity():
    best = best_methods(wb.load_study("compression"))
    assert len(best) == 3 * 2 * 6  # models × patterns × sparsities
    means = seed_means(wb.load_study("compression"))
    for _, row in best.iterrows():
        same = means[(means["model"] == row["model"]) & (means["pattern"] == row["pattern"])]
        assert row["accuracy_finetuned"] == same[same["sparsity"] == row["sparsity"]]["accuracy_finetuned"].max()


def test_plot_accuracy_vs_sparsity_draws_mean_and_seed_range_per_method():
    table = wb.load_study("compression")
    fig = plot_accuracy_vs_sparsity(table, model="cnn", criteria=["magnitude", "random"], patterns=["filter"])
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"magnitude · filter", "random · filter", "dense"}
    rows = table[(table["model"] == "cnn") & (table["criterion"] == "random") & (table["pattern"] == "filter")]
    means = rows.groupby("sparsity")["accuracy_finetuned"].mean()
    assert lines["random · filter"].get_ydata() == pytest.approx(100 * means.to_numpy())
    assert len(ax.collections) == 2  # one seed band per method
    with pytest.raises(ValueError, match="choose one with model="):
        plot_accuracy_vs_sparsity(table)


def test_plot_pareto_draws_every_setting_and_the_front():
    table = wb.load_study("compression")
    fig = plot_pareto(table, x="sparse_bytes", model="mlp")
    front = pareto_front(table[table["model"] == "mlp"], "sparse_bytes")
    line = next(line for line in fig.axes[0].lines if line.get_label() == "Pareto front")
    assert line.get_xdata().tolist() == front["sparse_bytes"].tolist()
    assert len(fig.axes[0].collections[0].get_offsets()) == len(seed_means(table[table["model"] == "mlp"]))
    with pytest.raises(ValueError, match="several of dataset"):
        plot_pareto(table)
    with pytest.raises(ValueError, match="x must be a cost column"):
        plot_pareto(table, x="seed", model="mlp")


def test_cache_files_name_their_point(tmp_path):
    wb.study(GRID, cache=tmp_path, recipe=FAST, progress=False)
    (record,) = [json.loads(path.read_text()) for path in tmp_path.glob("*.json")]
    assert record["point"]["model"] == "mlp" and record["row"]["status"] == "ok"

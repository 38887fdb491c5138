"""The `workbench` command line: info (text and JSON), train, argument errors, the console script."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ACCURACY_FLOORS, SHIPPED

import workbench as wb
from workbench.cli import SHRINK_BATCH, build_parser, main, shrink_command
from workbench.models import count_parameters
from workbench.structure.saving import load_shrunk


@pytest.fixture(scope="module")
def report() -> dict:
    """What ``workbench info --json`` prints, parsed (run once per module)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["info", "--json"]) == 0
    return json.loads(buffer.getvalue())


def test_info_json_is_one_object(capsys):
    assert main(["info", "--json"]) == 0
    out, _err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1, "--json must print exactly one line"
    parsed = json.loads(lines[0])
    assert set(parsed) == {"datasets", "models"}
    assert set(parsed["models"]) == set(SHIPPED)
    assert set(parsed["datasets"]) == set(wb.DATASETS)


def test_info_models(report, shipped):
    for name in SHIPPED:
        entry = report["models"][name]
        info = wb.checkpoint_info(name)
        assert entry["checkpoint"] is True
        assert entry["dataset"] == wb.MODELS[name].dataset
        assert entry["description"] == wb.MODELS[name].description
        assert entry["parameters"] == info["parameters"] == count_parameters(shipped(name))
        assert entry["test_accuracy"] == info["test_accuracy"]
    for name, floor in ACCURACY_FLOORS.items():
        assert report["models"][name]["test_accuracy"] >= floor


def test_info_datasets(report):
    for name in wb.DATASETS:
        data = wb.load_dataset(name)
        assert report["datasets"][name] == {
            "input_shape": list(data.input_shape),
            "classes": data.num_classes,
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
        }


def test_info_text(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name in (*SHIPPED, *wb.DATASETS):
        assert name in out
    assert "1257/180/360" in out


def test_console_script():
    """The installed entry point runs ``workbench.cli:main`` and turns its result into the exit status."""
    script = Path(sys.executable).with_name("workbench")
    assert script.exists(), "the `workbench` console script is not installed in this environment"
    result = subprocess.run(
        [str(script), "train", "mlp2d", "--epochs", "0"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, (result.stdout, result.stderr)  # main()'s 2 became the exit status
    assert "--epochs must be at least 1" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_train_bad_epochs_exits_2_and_writes_nothing(tmp_path, capsys, epochs):
    assert main(["train", "mlp2d", "--epochs", epochs, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--epochs must be at least 1" in err and epochs in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "resnet"],
        ["train", "mlp2d", "--epochs", "abc"],
        ["train", "mlp2d", "--epochs", "1.5"],
        ["train"],
        [],
        ["frobnicate"],
        ["info", "--bogus"],
    ],
)
def test_argparse_errors_exit_2(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path)] if argv[:1] == ["train"] and len(argv) > 1 else argv)
    assert exit_info.value.code == 2
    assert "usage: workbench" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_unknown_model_message_lists_choices(capsys):
    with pytest.raises(SystemExit):
        main(["train", "resnet"])
    err = capsys.readouterr().err
    assert "invalid choice" in err
    for name in SHIPPED:
        assert name in err


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "info" in out and "train" in out


def test_train_json_writes_checkpoint(tmp_path, capsys):
    assert main(["train", "mlp2d", "--epochs", "1", "--out", str(tmp_path), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["recipe"]["epochs"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp2d.json", "mlp2d.pt"]
    model = wb.pretrained("mlp2d", directory=tmp_path)
    assert wb.evaluate(model, wb.load_dataset("spirals").test) == meta["test_accuracy"]


def _shrink_json(capsys, *argv) -> dict:
    assert main(["prune", *argv, "--shrink", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, "--json must print exactly one line"
    return json.loads(out[0])


@pytest.mark.parametrize("name,pattern", [("cnn", "filter"), ("transformer", "head"), ("mlp", "neuron")])
def test_prune_shrink_json_reports_smaller_model(capsys, name, pattern):
    report = _shrink_json(capsys, name, "--pattern", pattern, "--sparsity", "0.5", "--batch", "3")
    small = wb.shrink(wb.pretrained(name), sparsity=0.5, pattern=pattern, criterion="magnitude")
    dense, shrunk = report["dense"], report["shrunk"]
    assert dense["params"] == count_parameters(wb.pretrained(name)) and shrunk["params"] == count_parameters(small)
    assert shrunk["params"] < dense["params"] and shrunk["flops"] < dense["flops"]
    assert report["ratios"]["params"] == pytest.approx(dense["params"] / shrunk["params"])
    assert (
        report["ratios"]["flops"] == pytest.approx(dense["flops"] / shrunk["flops"]) and report["ratios"]["flops"] > 1
    )
    for costs in (dense, shrunk):
        assert costs["latency"]["median_ms"] > 0 and costs["latency"]["runs"] >= 1
        assert costs["latency"]["batch"] == report["batch"] == 3 and costs["latency"]["device"] == "cpu"
        assert costs["latency"]["threads"] == report["threads"] == torch.get_num_threads()
    assert report["layers"] and all(layer["before"] != layer["after"] for layer in report["layers"])
    assert 0 <= report["accuracy_after"] <= 1 and report["accuracy_before"] == wb.checkpoint_info(name)["test_accuracy"]
    assert "out" not in report


def test_prune_shrink_text_lists_layers_and_ratios(capsys):
    assert main(["prune", "cnn", "--pattern", "filter", "--sparsity", "0.5", "--shrink"]) == 0
    out = capsys.readouterr().out
    assert "stem.0" in out and "32×1×3×3 → 16×1×3×3" in out
    for word in ("parameters", "FLOPs (batch 256)", "latency ms (batch 256)", "dense/shrunk", "test accuracy"):
        assert word in out
    speedup = re.search(r"^speedup (\d+\.\d\d)× at batch 256, (\d+) threads \(cpu", out, re.MULTILINE)
    assert speedup and int(speedup[2]) == torch.get_num_threads()
    latency_row = next(line for line in out.splitlines() if line.startswith("latency ms"))
    assert latency_row.endswith(f"{speedup[1]}×")  # the speedup line repeats the latency ratio


def test_prune_shrink_default_batch_is_the_documented_one():
    """The default batch is the one the README's example output and BENCHMARKS.md's headline use."""
    assert build_parser().parse_args(["prune", "cnn", "--shrink"]).batch == SHRINK_BATCH == 256
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    command = "workbench prune cnn --pattern filter --sparsity 0.5 --shrink\n"
    assert command in readme, "the README documents this command and shows its output"
    shown = readme[readme.index(command) :].split("```")[0]
    for line in ("FLOPs (batch 256)", "latency ms (batch 256)", "speedup ", " at batch 256, 2 threads"):
        assert line in shown, line
    assert "--batch 1" in readme  # how to time single images instead


def test_prune_shrink_speedup_names_its_batch(capsys):
    assert main(["prune", "mlp", "--pattern", "neuron", "--shrink", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "FLOPs (batch 2)" in out and "latency ms (batch 2)" in out
    assert re.search(rf"^speedup \d+\.\d\d× at batch 2, {torch.get_num_threads()} threads", out, re.MULTILINE)


@pytest.mark.parametrize("name,pattern", [("cnn", "filter"), ("transformer", "head")])
def test_prune_shrink_out_round_trips(tmp_path, capsys, name, pattern):
    out = tmp_path / "small.pt"
    args = build_parser().parse_args(
        ["prune", name, "--pattern", pattern, "--sparsity", "0.5", "--shrink", "--out", str(out)]
    )
    small, report = shrink_command(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.json", "small.pt"]
    loaded = load_shrunk(out)
    assert not loaded.training and count_parameters(loaded) == report["shrunk"]["params"]
    assert loaded.state_dict().keys() == small.state_dict().keys()
    images = wb.load_dataset("digits").test.tensors[0][:64]
    with torch.no_grad():
        assert torch.equal(loaded(images), small.eval()(images))
    assert json.loads((tmp_path / "small.json").read_text())["shrink"]["layers"] == report["layers"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--pattern", "unstructured", "--out", "small.pt"], "--shrink removes whole units"),
        (["--pattern", "2:4", "--out", "small.pt"], "--shrink removes whole units"),
        (["--pattern", "filter", "--batch", "0", "--out", "small.pt"], "--batch must be at least 1"),
        (["--pattern", "filter", "--out", "small.json"], "use e.g. small.pt"),
    ],
)
def test_prune_shrink_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["prune", "cnn", "--shrink", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert not any(tmp_path.iterdir())


def _no_work(*_args, **_kwargs):
    raise AssertionError("the command did work before checking --out")


@pytest.mark.parametrize(
    "argv",
    [
        ["prune", "mlp"],
        ["prune", "cnn", "--pattern", "filter", "--shrink"],
    ],
)
def test_prune_out_in_missing_folder_fails_first_in_one_line(tmp_path, capsys, monkeypatch, argv):
    """A --out that cannot be written is refused before the model is even loaded: one line, exit 2."""
    monkeypatch.setattr("workbench.cli.pretrained", _no_work)
    out = tmp_path / "missing" / "x.pt"
    assert main([*argv, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("workbench prune: ") and f"{out.parent} does not exist" in captured.err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("shrink", [[], ["--pattern", "filter", "--shrink"]])
def test_prune_out_that_is_a_folder_fails_first(tmp_path, capsys, monkeypatch, shrink):
    monkeypatch.setattr("workbench.cli.pretrained", _no_work)
    assert main(["prune", "cnn", *shrink, "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "it is a folder" in captured.err and captured.err.count("\n") == 1


def test_prune_out_writes_plain_state_dict(tmp_path, capsys):
    out = tmp_path / "pruned.pt"
    assert main(["prune", "mlp", "--sparsity", "0.5", "--out", str(out)]) == 0
    assert f"saved plain state_dict to {out}" in capsys.readouterr().out
    state = torch.load(out, weights_only=True)
    model = wb.build_model("mlp")
    model.load_state_dict(state)  # plain names, no mask buffers
    assert wb.sparsity_report(model).sparsity == 0.5


def test_prune_save_sparse_writes_a_file_load_sparse_reads(tmp_path, capsys):
    path = tmp_path / "pruned.sparse"
    assert main(["prune", "mlp", "--sparsity", "0.9", "--save-sparse", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sparse"] == {"path": str(path), "bytes": path.stat().st_size}
    again = wb.load_sparse(path)
    assert wb.sparsity_report(again).sparsity == pytest.approx(0.9, abs=1e-4)


def test_prune_save_sparse_is_checked_first_and_refused_with_shrink(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("workbench.cli.pretrained", _no_work)
    missing = tmp_path / "missing" / "x.sparse"
    assert f"cannot write --save-sparse {missing}" in _one_line_error(
        capsys, ["prune", "mlp", "--save-sparse", str(missing)]
    )
    argv = ["prune", "mlp", "--pattern", "neuron", "--shrink", "--save-sparse", str(tmp_path / "x.sparse")]
    assert "--save-sparse saves the masked model" in _one_line_error(capsys, argv)
    assert not any(tmp_path.iterdir())


def _one_line_error(capsys, argv) -> str:
    """Run ``argv``; assert exit 2, nothing on stdout and exactly one line, no traceback, on stderr; return it."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.count("\n") == 1 and captured.err.endswith("\n"), captured.err
    return captured.err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["prune", "mlp", "--pattern", "nosuch"], "unknown pattern 'nosuch'"),
        (
            ["prune", "cnn", "--pattern", "filter", "--exclude", "nosuch", "--shrink"],
            "exclude 'nosuch' matches no layer",
        ),
        (["prune", "cnn", "--pattern", "channel", "--shrink"], "whole units"),
        (["prune", "mlp", "--sparsity", "1.5"], "sparsity must be in [0, 1)"),
    ],
)
def test_prune_library_value_error_is_one_line(capsys, argv, message):
    """Inputs the library refuses with a ValueError (an unknown pattern, say) end in one line on stderr, exit 2."""
    err = _one_line_error(capsys, argv)
    assert err.startswith("workbench prune: ") and message in err


@pytest.mark.parametrize(
    "argv,target",
    [
        (["prune", "mlp", "--exclude", "nosuchlayer"], "workbench.cli.prune"),
        (
            ["prune", "cnn", "--pattern", "filter", "--shrink", "--exclude", "nosuchlayer"],
            "workbench.cli.shrink_with_report",
        ),
        (["train", "mlp2d", "--epochs", "1"], "workbench.cli.train_checkpoint"),
    ],
)
def test_any_library_value_error_is_one_line(capsys, monkeypatch, argv, target):
    """Whatever ValueError the library raises, even one whose message spans lines, is one line on stderr, exit 2."""

    def refuse(*_args, **_kwargs):
        raise ValueError("exclude: 'nosuchlayer' matches no module;\n  the model's modules are fc1, fc2, fc3")

    monkeypatch.setattr(target, refuse)
    err = _one_line_error(capsys, argv)
    assert (
        err == f"workbench {argv[0]}: exclude: 'nosuchlayer' matches no module; the model's modules are fc1, fc2, fc3\n"
    )


def test_prune_fine_tune_and_rounds(capsys):
    assert main(["prune", "mlp", "--sparsity", "0.9", "--scope", "global", "--fine-tune-epochs", "2", "--json"]) == 0
    once = json.loads(capsys.readouterr().out)
    assert once["accuracy_after"] > once["accuracy_pruned"] and once["sparsity"] == pytest.approx(0.9, abs=1e-4)
    argv = ["prune", "mlp", "--sparsity", "0.9", "--scope", "global", "--fine-tune-epochs", "2", "--rounds", "3"]
    assert main([*argv, "--schedule", "linear", "--json"]) == 0
    rounds = json.loads(capsys.readouterr().out)
    assert rounds["rounds"] == 3 and rounds["sparsity"] == pytest.approx(0.9, abs=1e-4)
    assert main(argv) == 0
    assert "pruned in 3 rounds" in capsys.readouterr().out


def test_train_prune_to_writes_a_sparse_checkpoint(tmp_path, capsys):
    assert main(["train", "mlp2d", "--epochs", "3", "--prune-to", "0.8", "--out", str(tmp_path), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["pruned"]["sparsity"] == pytest.approx(0.8, abs=1e-3) and meta["pruned"]["schedule"] == "cubic"
    model = wb.pretrained("mlp2d", directory=tmp_path)
    assert wb.sparsity_report(model).sparsity == pytest.approx(0.8, abs=1e-3)
    assert main(["train", "mlp2d", "--prune-to", "0.8"]) == 2, (
        "the shipped checkpoint is never replaced by a sparse one"
    )


def test_prune_shrink_times_on_the_device_asked_for(capsys, monkeypatch, tmp_path):
    assert _shrink_json(capsys, "mlp", "--pattern", "neuron", "--batch", "2", "--device", "cpu")["device"] == "cpu"
    monkeypatch.chdir(tmp_path)
    assert main(["prune", "mlp", "--pattern", "neuron", "--shrink", "--device", "tpu"]) == 2
    error = capsys.readouterr().err.strip()
    assert "unknown device 'tpu'" in error and "\n" not in error


def test_prune_shrink_not_exact_removes_the_layer_normed_width_and_says_so(capsys):
    exact = _shrink_json(capsys, "transformer", "--pattern", "neuron", "--sparsity", "0.5", "--batch", "3")
    loose = _shrink_json(
        capsys, "transformer", "--pattern", "neuron", "--sparsity", "0.5", "--batch", "3", "--not-exact"
    )
    assert exact["exact"] and exact["changed_groups"] == []
    assert not loose["exact"] and len(loose["changed_groups"]) == 1
    assert loose["shrunk"]["params"] < exact["shrunk"]["params"]
    assert any("fine-tune to recover" in note for note in loose["notes"])
    assert {"name": "norm", "before": "LN(64,)", "after": "LN(32,)"} in loose["layers"]


def test_prune_not_exact_without_shrink_is_refused(capsys):
    assert main(["prune", "mlp", "--not-exact"]) == 2
    assert "--not-exact chooses what --shrink removes" in capsys.readouterr().err

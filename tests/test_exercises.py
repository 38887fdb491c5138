"""The exercise checker: every reference solution passes, wrong attempts fail without revealing the answer,
strict mode raises, and the notebooks' exercise cells, check cells and solutions fit together."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import workbench as wb
from workbench.criteria import CRITERIA
from workbench.exercises import (
    EXERCISES,
    STRICT_VARIABLE,
    Verdict,
    check,
    exercise_cells,
    hints,
    parse_solutions,
    solutions_path,
    solve,
    write_solved,
)
from workbench.exercises.scoring import input_norm_scores

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = {
    name: source for nb in NOTEBOOKS for name, source in parse_solutions(solutions_path(nb).read_text()).items()
}


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    """Verdicts, not exceptions, unless a test asks for strict mode; the registry as it was found."""
    monkeypatch.delenv(STRICT_VARIABLE, raising=False)
    before = dict(CRITERIA)
    yield
    CRITERIA.clear()
    CRITERIA.update(before)


def solved(name: str, variable: str, **context):
    """The value ``variable`` gets from running exercise ``name``'s solution (with the notebook names it uses)."""
    namespace = {"np": np, "torch": torch, "F": F, "wb": wb, **context}
    exec(SOLUTIONS[name], namespace)
    return namespace[variable]


def fc1_norms() -> torch.Tensor:
    return torch.linspace(0.0, 3.0, 300)[torch.randperm(300, generator=torch.Generator().manual_seed(0))]


def reference_attempt(name: str):
    """(attempt, context) of the reference solution of exercise ``name``."""
    if name == "closest_criterion":
        agreement = {"obd": (0.4, 0.5), "synflow": (0.95, 0.9), "random": (0.0, 0.18)}
        return solved(name, "my_answer", agreement=agreement), {"agreement": agreement}
    if name == "cut_threshold":
        norms = fc1_norms()
        return solved(name, "my_threshold", neuron_norms=[{"fc1": norms}]), {"norms": norms}
    if name == "cnn_allocation":

        def pruned(model_name, **kwargs):
            model = wb.pretrained(model_name)
            return wb.prune(model, **kwargs), None

        return solved(name, "my_allocation", pruned=pruned), {}
    if name == "input_norm_criterion":
        solved(name, "input_norm")  # registers it
        return "input_norm", {}
    variables = {
        "tour_scan": "largest_within",
        "magnitude_mask": "magnitude_mask",
        "fc3_sparsity": "my_sparsity",
        "nm_mask": "nm_mask",
        "one_head_zeros": "my_answer",
        "global_masks": "global_magnitude",
        "cut_neurons": "cut_neurons",
        "toy_params_lost": "my_toy_answer",
        "residual_channel": "my_residual_answer",
        "cubic_schedule": "my_cubic",
        "gradual_loop": "train_by_hand",
        "soft_threshold": "my_soft_threshold",
        "group_lasso_penalty": "group_lasso_penalty",
        "next_ticket_mask": "next_ticket_mask",
        "sparse_bytes": "sparse_bytes",
        "rms_norm_rescale": "rms_norm_rescale",
    }
    return solved(name, variables[name]), {}


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_solution_passes(name):
    attempt, context = reference_attempt(name)
    verdict = check(name, attempt, **context)
    assert verdict.passed, verdict
    assert verdict.hint == "" and "✓" in repr(verdict)


def stub(*args, **kwargs):
    raise NotImplementedError  # your code here


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_stub_and_no_answer_are_not_yet(name):
    attempt, context = reference_attempt(name)
    verdict = check(name, None, **context)
    assert not verdict.passed and "no answer yet" in verdict.message and verdict.hint
    if callable(attempt):
        verdict = check(name, stub, **context)
        assert not verdict.passed and "NotImplementedError" in verdict.message, verdict


def failing(name, attempt, **context) -> Verdict:
    verdict = check(name, attempt, **context)
    assert not verdict.passed, f"{name} accepted a wrong attempt"
    assert verdict.message and verdict.hint
    assert "tensor(" not in repr(verdict) + verdict._repr_html_()  # no expected mask or array shown
    return verdict


def magnitude_mask_off_by(offset: int):
    def attempt(weight, sparsity):
        pruned = min(max(round(sparsity * weight.numel()) + offset, 0), weight.numel())
        mask = torch.ones(weight.numel(), dtype=torch.bool)
        mask[weight.abs().flatten().argsort()[:pruned]] = False
        return mask.view(weight.shape)

    return attempt


def test_wrong_magnitude_masks_fail_saying_what_is_wrong():
    correct = solved("magnitude_mask", "magnitude_mask")
    verdict = failing("magnitude_mask", lambda w, s: ~correct(w, s))
    assert "prunes" in verdict.message and "round(s·n)" in verdict.message
    truncating = failing("magnitude_mask", lambda w, s: correct(w, int(s * w.numel()) / w.numel()))
    assert "case 3" in truncating.message  # 0.29 × 100 truncates to 28
    largest_first = failing("magnitude_mask", lambda w, s: correct(1 / w.abs(), s))
    assert "larger |w|" in largest_first.message
    signed = failing("magnitude_mask", lambda w, s: correct(w - w.min(), s))  # ranks w, not |w|
    assert "larger |w|" in signed.message and "inverted" in signed.hint
    assert "dtype" in failing("magnitude_mask", lambda w, s: correct(w, s).float()).message
    assert "shape" in failing("magnitude_mask", lambda w, s: correct(w, s).flatten()).message
    assert "Tensor" in failing("magnitude_mask", lambda w, s: correct(w, s).tolist()).message

    def in_place(weight, sparsity):
        mask = correct(weight, sparsity)
        weight.mul_(mask)
        return mask

    assert "changed the weight" in failing("magnitude_mask", in_place).message
    assert "ZeroDivisionError" in failing("magnitude_mask", lambda w, s: 1 / 0).message


@given(offset=st.integers(-3, 3).filter(bool))
def test_any_miscount_of_a_magnitude_mask_fails(offset):
    verdict = failing("magnitude_mask", magnitude_mask_off_by(offset))
    assert "should prune exactly round(s·n)" in verdict.message


def test_wrong_scans_fail_without_the_largest_sparsity():
    grid = np.round(np.arange(0.0, 1.0, 0.01), 2)
    first_drop = solved("tour_scan", "largest_within")

    def before_first_failure(accuracy, dense, tolerance=0.01):
        for previous, s in itertools.pairwise(grid):
            if accuracy(s) < dense - tolerance:
                return previous
        return grid[-1]

    verdict = failing("tour_scan", before_first_failure)
    assert "case 3" in verdict.message and "larger sparsity" in verdict.message and "0.65" not in verdict.message
    strict_line = failing("tour_scan", lambda a, d, t=0.01: max([s for s in grid if a(s) > d - t], default=0.0))
    assert "case 2" in strict_line.message and "larger sparsity" in strict_line.message
    assert "ValueError" in failing("tour_scan", lambda a, d, t=0.01: max(s for s in grid if a(s) > d - t)).message
    assert "not on the grid" in failing("tour_scan", lambda a, d, t=0.01: 1.0).message
    assert "case 5" in failing("tour_scan", lambda a, d, t=0.01: first_drop(a, d, 0.01)).message
    assert "more than the tolerance" in failing("tour_scan", lambda a, d, t=0.01: 0.99).message


@pytest.mark.parametrize(
    ("name", "attempt", "answer"),
    [
        ("fc3_sparsity", 0.137, "0.863"),
        ("fc3_sparsity", 0.86, "0.863"),
        ("one_head_zeros", 3 * 16 * 64, "4096"),
        ("toy_params_lost", 4, "5"),
        ("residual_channel", 9 + 288 + 288 + 576, "1165"),
        ("soft_threshold", [0.5, -0.03, 0.01, -0.2, 0.0], "0.45"),
    ],
)
def test_wrong_numbers_fail_without_the_answer(name, attempt, answer):
    verdict = failing(name, attempt)
    assert answer not in re.findall(r"[\d.]+", verdict.message + " " + verdict.hint)


def test_answers_of_the_wrong_type_are_not_yet():
    assert "number" in failing("fc3_sparsity", "0.863").message
    assert "number" in failing("one_head_zeros", True).message
    assert "refuses" in failing("fc3_sparsity", 1.5).message
    assert "five numbers" in failing("soft_threshold", [0.45, 0.0]).message
    assert "dict" in failing("cnn_allocation", 0.6).message
    assert "refuses" in failing("cnn_allocation", {"stem": 0.5}).message
    assert "prune more" in failing("cnn_allocation", {"block2.conv1": 0.5}).message
    assert (
        "sensitive layers"
        in failing(
            "cnn_allocation",
            {n: 0.65 for n in ("stem.0", "down.0", "fc")}
            | {n: 0.65 for n in ("block1.conv1", "block1.conv2", "block2.conv1", "block2.conv2")},
        ).message
    )
    norms = fc1_norms()
    assert "removes 300" in failing("cut_threshold", 10.0, norms=norms).message
    agreement = {"obd": (0.4, 0.5), "synflow": (0.95, 0.9)}
    verdict = failing("closest_criterion", "obd", agreement=agreement)
    assert "another does better" in verdict.message and "synflow" not in verdict.message
    assert "is not one of" in failing("closest_criterion", "magnitude", agreement=agreement).message


def test_wrong_criteria_fail():
    from workbench.criteria import register

    @register("plain_magnitude", needs_data=True, description="|w| only")
    def plain_magnitude(model, names, data, max_batches=None):
        return {name: model.get_parameter(name).detach().abs() for name in names}

    assert "not |w| × the L2 norm" in failing("input_norm_criterion", "plain_magnitude").message
    assert "not registered" in failing("input_norm_criterion", lambda model, names, data: {}).message
    assert "is registered" in failing("input_norm_criterion", "missing").message

    @register("dataless", needs_data=False, description="no data")
    def dataless(model, names, data, max_batches=None):
        return {}

    assert "needs_data=True" in failing("input_norm_criterion", dataless).message

    @register("no_budget", needs_data=True, description="no max_batches")
    def no_budget(model, names, data):
        return {}

    assert "max_batches" in failing("input_norm_criterion", "no_budget").message

    @register("one_batch", needs_data=True, description="only the first batch")
    def one_batch(model, names, data, max_batches=None):
        return input_norm_scores(model, names, data, max_batches=1)

    assert "case 1" in failing("input_norm_criterion", "one_batch").message

    @register("partial", needs_data=True, description="forgets a layer")
    def partial(model, names, data, max_batches=None):
        return {name: torch.zeros(1) for name in names[:1]}

    assert "one entry per name" in failing("input_norm_criterion", "partial").message


def test_wrong_nm_masks_fail():
    correct = solved("nm_mask", "nm_mask")
    along_rows = failing("nm_mask", lambda w, n, m: correct(w.T.contiguous(), n, m).T)
    assert "consecutive inputs" in along_rows.message
    assert "larger |w|" in failing("nm_mask", lambda w, n, m: correct(1 / w.abs(), n, m)).message
    assert "keeps exactly" in failing("nm_mask", lambda w, n, m: correct(w, m - n, m)).message
    assert "dtype" in failing("nm_mask", lambda w, n, m: correct(w, n, m).int()).message


def test_wrong_global_masks_fail():
    from workbench.exercises.basics import reference_mask

    local = failing("global_masks", lambda weights, s: {n: reference_mask(w, s) for n, w in weights.items()})
    assert "one threshold" in local.message or "round(s·N)" in local.message
    correct = solved("global_masks", "global_magnitude")
    assert (
        "one mask per layer" in failing("global_masks", lambda weights, s: list(correct(weights, s).values())).message
    )
    inverted = failing("global_masks", lambda weights, s: {n: ~m for n, m in correct(weights, s).items()})
    assert "prune" in inverted.message


@given(shift=st.floats(0.01, 0.2))
def test_a_global_mask_at_another_sparsity_fails(shift):
    correct = solved("global_masks", "global_magnitude")
    verdict = failing("global_masks", lambda weights, s: correct(weights, min(s + shift, 0.99)))
    assert "round(s·N)" in verdict.message


def test_wrong_neuron_cuts_fail():
    correct = solved("cut_neurons", "cut_neurons")

    def rows_only(weights, biases, keep):
        weights, biases = list(weights), list(biases)
        for i, kept in enumerate(keep):
            weights[i], biases[i] = weights[i][kept], biases[i][kept]
        return weights, biases

    assert "columns of the previous" in failing("cut_neurons", rows_only).message
    reversed_order = failing("cut_neurons", lambda w, b, keep: correct(w, b, [k.flip(0) for k in keep]))
    assert "right numbers" in reversed_order.message
    assert "two lists" in failing("cut_neurons", lambda w, b, keep: correct(w, b, keep)[0]).message


@given(power=st.sampled_from([1, 2, 4]), swap=st.booleans())
def test_wrong_cubic_schedules_fail_without_the_value(power, swap):
    def attempt(t, s_i, s_f, t0, n, dt):
        p = (t - t0) / (n * dt)
        return s_f + (s_i - s_f) * (p if swap else 1 - p) ** power

    verdict = failing("cubic_schedule", attempt)
    step = int(re.search(r"value at step (\d+)", verdict.message).group(1))
    case = int(re.search(r"case (\d+)", verdict.message).group(1))
    from workbench.exercises.over_time import CUBIC_CASES

    expected = wb.schedule("cubic", *CUBIC_CASES[case - 1])(step)
    assert f"{expected:.4f}" not in verdict.message


def test_n_instead_of_n_dt_fails():
    verdict = failing("cubic_schedule", lambda t, s_i, s_f, t0, n, dt: s_f + (s_i - s_f) * (1 - (t - t0) / n) ** 3)
    assert "case 1" in verdict.message


def test_wrong_training_loops_fail():
    correct = solved("gradual_loop", "train_by_hand")

    def loop(where):
        def train_by_hand(model, pruner, data, epochs=2, lr=3e-3, batch_size=64):
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
            inputs, labels = data.train.tensors
            for _ in range(epochs):
                for batch in torch.randperm(len(inputs)).split(batch_size):
                    optimizer.zero_grad()
                    if where == "before backward":
                        pruner.step()
                    F.cross_entropy(model(inputs[batch]), labels[batch]).backward()
                    optimizer.step()
                    if where == "twice":
                        pruner.step()
                        pruner.step()
                if where == "per epoch":
                    pruner.step()
            return model

        return train_by_hand

    assert "NotImplementedError" not in failing("gradual_loop", loop("nowhere")).message
    assert "never heard" in failing("gradual_loop", loop("nowhere")).message
    assert "heard of 80 steps" in failing("gradual_loop", loop("twice")).message
    assert "heard of 2 steps" in failing("gradual_loop", loop("per epoch")).message
    early = failing("gradual_loop", loop("before backward"))
    assert "snip_momentum" in early.message and "after loss.backward()" in early.message
    assert check("gradual_loop", correct).passed


def test_wrong_group_lasso_penalties_fail_with_a_diagnosis():
    messages = {
        "squared": failing("group_lasso_penalty", lambda w: w.flatten(1).square().sum()).message,
        "columns": failing("group_lasso_penalty", lambda w: w.flatten(1).norm(dim=0).sum()).message,
        "whole": failing("group_lasso_penalty", lambda w: w.norm()).message,
        "l1": failing("group_lasso_penalty", lambda w: w.abs().sum()).message,
    }
    assert "L2 penalty" in messages["squared"] and "columns" in messages["columns"]
    assert "whole matrix" in messages["whole"] and "L1 penalty" in messages["l1"]
    detached = failing("group_lasso_penalty", lambda w: w.detach().flatten(1).norm(dim=1).sum())
    assert "autograd" in detached.message
    assert "0-d tensor" in failing("group_lasso_penalty", lambda w: w.flatten(1).norm(dim=1)).message
    assert (
        "0-d tensor" in failing("group_lasso_penalty", lambda w: float(w.detach().flatten(1).norm(dim=1).sum())).message
    )


def test_strict_mode_raises_on_failure_only(monkeypatch):
    monkeypatch.setenv(STRICT_VARIABLE, "strict")
    with pytest.raises(AssertionError, match="cubic_schedule, not yet"):
        check("cubic_schedule", stub)
    assert check("cubic_schedule", solved("cubic_schedule", "my_cubic")).passed
    monkeypatch.setenv(STRICT_VARIABLE, "lenient")
    assert not check("cubic_schedule", stub).passed


def test_verdicts_render_escaped_and_unknown_names_are_refused():
    verdict = Verdict("x", False, "a <b> & c", "use <code>")
    html = verdict._repr_html_()
    assert "a &lt;b&gt; &amp; c" in html and "use &lt;code&gt;" in html and "not yet" in html
    assert repr(verdict).startswith("✗ x, not yet: a <b> & c")
    assert "correct" in Verdict("x", True, "fine")._repr_html_()
    stubbed = check("magnitude_mask", stub)  # the first hint is shown, and where the others are
    assert stubbed.hint == hints("magnitude_mask")[0] and "hints('magnitude_mask')" in repr(stubbed)
    with pytest.raises(ValueError, match="unknown exercise 'nope'; the exercises are: "):
        check("nope", 1)


def notebook(*cells) -> dict:
    return {"cells": [dict(c) for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def code(source, name=None):
    metadata = {"tags": ["exercise"], "exercise": name} if name else {}
    return {"cell_type": "code", "source": source, "metadata": metadata, "outputs": [{"x": 1}], "execution_count": 3}


@given(
    names=st.lists(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), min_size=1, max_size=4, unique=True),
    bodies=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40), min_size=4, max_size=4),
)
def test_solve_replaces_exactly_the_tagged_cells(names, bodies):
    bodies = [body.strip("\n") or "pass" for body in bodies]
    text = '"""header"""\n' + "".join(f"# %% exercise: {n}\n{b}\n\n" for n, b in zip(names, bodies))
    solutions = parse_solutions(text)
    assert solutions == {n: b.strip("\n") for n, b in zip(names, bodies)}
    cells = [code("print(1)"), {"cell_type": "markdown", "source": "# %% exercise: x", "metadata": {}}]
    cells += [code("stub = None", name) for name in names] + [code("check(...)")]
    before = notebook(*cells)
    after = solve(before, solutions)
    assert after["cells"][0] == before["cells"][0] and after["cells"][1] == before["cells"][1]
    assert after["cells"][-1] == before["cells"][-1]
    for cell, name in zip(after["cells"][2:-1], names):
        assert cell["source"] == solutions[name] and cell["outputs"] == [] and cell["execution_count"] is None
    assert before["cells"][2]["source"] == "stub = None"  # the original is left alone


def test_solve_refuses_a_missing_solution_and_a_bad_tag():
    with pytest.raises(ValueError, match="no solution for exercise 'b' \\(cell 1\\)"):
        solve(notebook(code("x", "a"), code("y", "b")), {"a": "x = 1"})
    bad = notebook({"cell_type": "markdown", "source": "", "metadata": {"tags": ["exercise"], "exercise": "a"}})
    with pytest.raises(ValueError, match="cell 0 is tagged 'exercise' but is not a code cell"):
        exercise_cells(bad)
    with pytest.raises(ValueError, match="exercise 'a' has two solutions"):
        parse_solutions("# %% exercise: a\nx = 1\n# %% exercise: a\nx = 2\n")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_exercises_with_checks_and_solutions(path, tmp_path):
    nb = json.loads(path.read_text())
    cells = exercise_cells(nb)
    assert cells, f"{path.name} has no exercise cell"
    solutions = parse_solutions(solutions_path(path).read_text())
    assert sorted(solutions) == sorted(name for _, name in cells), "one solution per exercise cell, no others"
    for index, name in cells:
        assert name in EXERCISES, name
        following = "".join(nb["cells"][index + 1]["source"])
        assert following.startswith(f'check("{name}", '), f"cell {index + 1} should check {name}"
        stub = "".join(nb["cells"][index]["source"])
        assert any(mark in stub for mark in ("raise NotImplementedError", "= None", "# your line here")), stub
    solved_copy = json.loads(write_solved(path, tmp_path).read_text())
    changed = [i for i, (a, b) in enumerate(zip(nb["cells"], solved_copy["cells"])) if a != b]
    assert changed == [index for index, _ in cells]


def test_sparse_bytes_catches_a_floor_and_a_fixed_index_width():
    right = solved("sparse_bytes", "sparse_bytes")

    def floored_bitmask(mask, value_bytes=4):
        return {**right(mask, value_bytes), "bitmask": mask.numel() // 8 + int(mask.sum()) * value_bytes}

    def one_byte_gaps(mask, value_bytes=4):
        return {**right(mask, value_bytes), "indices": int(mask.sum()) * (1 + value_bytes)}

    assert "case 5" in failing("sparse_bytes", floored_bitmask).message  # 135 bits take 17 bytes, not 16
    assert "case 4" in failing("sparse_bytes", one_byte_gaps).message  # a gap of 1,198 needs 2 bytes


def test_rms_norm_rescale_catches_a_missing_root_and_an_unscaled_epsilon():
    def no_root(weight, eps, kept):
        ratio = weight.numel() / kept.numel()
        return weight[kept] * ratio, eps * ratio

    def fixed_eps(weight, eps, kept):
        return weight[kept] * (weight.numel() / kept.numel()) ** 0.5, eps

    def sliced_only(weight, eps, kept):
        return weight[kept], eps

    assert "case 1" in failing("rms_norm_rescale", no_root).message
    assert "case 1" in failing("rms_norm_rescale", fixed_eps).message  # eps is inside the root: it scales too
    assert "case 1" in failing("rms_norm_rescale", sliced_only).message
    identity = solved("rms_norm_rescale", "rms_norm_rescale")
    weight = torch.randn(5)
    new_weight, new_eps = identity(weight, 1e-6, torch.arange(5))
    assert torch.equal(new_weight, weight) and new_eps == 1e-6  # keeping every channel changes nothing

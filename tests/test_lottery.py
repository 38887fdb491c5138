"""Lottery tickets: exact sparsity per round, bit-exact rewinding, honest controls, reproducibility, refusals."""

from __future__ import annotations

import pytest
import torch

import workbench as wb
from workbench import lottery
from workbench.masks import get_masks, plain_state_dict
from workbench.train import seed_everything

PRUNED = ("fc1.weight", "fc2.weight", "fc3.weight")  # the digits mlp's prunable weights (biases stay)
EPOCHS, ROUNDS, RATE = 1, 3, 0.2
SPARSITY = 1 - (1 - RATE) ** ROUNDS


@pytest.fixture(scope="module")
def data():
    return wb.load_dataset("digits")


def spied_run(data, **options):
    """Run ``lottery_ticket`` and record, for every training, the model's weights and masks before and after."""
    calls = []
    real = lottery.train

    def spy(model, data, **kwargs):
        before = (plain_state_dict(model), {n: m.clone() for n, m in get_masks(model).items()})
        history = real(model, data, **kwargs)
        calls.append((*before, plain_state_dict(model)))
        return history

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lottery, "train", spy)
        options = {"sparsity": SPARSITY, "rounds": ROUNDS, "epochs": EPOCHS, "progress": False, **options}
        history = lottery.lottery_ticket("mlp", data, **options)
    return history, calls


@pytest.fixture(scope="module")
def run(data):
    return spied_run(data, rewind=0)


@pytest.fixture(scope="module")
def run_k(data):
    return spied_run(data, rewind=7, rounds=1)


def by_round(calls):
    """The training calls of each round: {round: {"ticket": call, "reinit": call, "random_mask": call}}."""
    rounds = {}
    for index in range(1, (len(calls) - 1) // 3 + 1):
        rounds[index] = dict(zip(lottery.RUNS, calls[3 * index - 2 : 3 * index + 1]))
    return rounds


def test_every_round_prunes_the_same_share_of_each_layer_exactly(run):
    history, _ = run
    assert history.rate == pytest.approx(RATE) and [r.round for r in history.rounds] == [1, 2, 3]
    previous = None
    for r in history.rounds:
        assert sorted(r.masks) == sorted(PRUNED)
        for name, mask in r.masks.items():
            n = mask.numel()
            assert n - int(mask.sum()) == round(n * (1 - (1 - RATE) ** r.round)), (r.round, name)
            if previous is not None:
                assert not (mask & ~previous[name]).any(), "a pruned weight came back"
        total = sum(m.numel() for m in r.masks.values())
        assert r.sparsity == pytest.approx(1 - sum(int(m.sum()) for m in r.masks.values()) / total)
        previous = r.masks
    assert history.rounds[-1].sparsity == pytest.approx(SPARSITY, abs=1e-4)


def test_global_scope_prunes_the_exact_total(data):
    history = lottery.lottery_ticket("mlp", data, 0.36, rounds=2, epochs=1, scope="global", progress=False)
    for r in history.rounds:
        total = sum(m.numel() for m in r.masks.values())
        pruned = sum(int((~m).sum()) for m in r.masks.values())
        assert pruned == round(total * (1 - (1 - history.rate) ** r.round))
    per_layer = [1 - m.float().mean().item() for m in history.rounds[-1].masks.values()]
    assert max(per_layer) - min(per_layer) > 0.01  # one ranking: layers end up unequally sparse


def test_ticket_restarts_from_the_initial_weights_bit_for_bit(run):
    history, calls = run
    dense_before = calls[0][0]
    for name, value in history.rewind_weights.items():  # rewind=0: the weights before any training
        assert torch.equal(value, dense_before[name]), name
    for index, runs in by_round(calls).items():
        before, masks, _ = runs["ticket"]
        assert all(torch.equal(masks[n], history.rounds[index - 1].masks[n]) for n in PRUNED)
        for name, saved in history.rewind_weights.items():
            if name in masks:
                assert torch.equal(before[name][masks[name]], saved[masks[name]]), (index, name)
                assert not before[name][~masks[name]].any()
            else:
                assert torch.equal(before[name], saved), (index, name)


def test_rewinding_to_step_k_restarts_from_the_weights_after_k_steps(data, run_k):
    history, calls = run_k
    assert history.rewind == 7
    seed_everything(0)
    model, seen = wb.build_model("mlp"), {}

    def save(model, step):
        if step == 7:
            seen.update({k: v.detach().clone() for k, v in model.state_dict().items()})

    wb.train(model, data, epochs=EPOCHS, seed=0, progress=False, step_hook=save)
    assert seen and all(torch.equal(history.rewind_weights[k], v) for k, v in seen.items())
    assert not torch.equal(history.rewind_weights["fc1.weight"], calls[0][0]["fc1.weight"])  # not the init
    before, masks, _ = by_round(calls)[1]["ticket"]
    for name in PRUNED:
        assert torch.equal(before[name][masks[name]], history.rewind_weights[name][masks[name]])


def test_pruned_weights_stay_zero_and_survivors_train(run):
    _, calls = run
    for runs in by_round(calls).values():
        for label, (before, masks, after) in runs.items():
            for name in PRUNED:
                assert not after[name][~masks[name]].any(), (label, name)
                assert not torch.equal(after[name][masks[name]], before[name][masks[name]]), (label, name)


def test_reinit_control_has_the_tickets_masks_and_other_weights(run):
    history, calls = run
    for index, runs in by_round(calls).items():
        before, masks, _ = runs["reinit"]
        for name in PRUNED:
            assert torch.equal(masks[name], history.rounds[index - 1].masks[name])
            kept = masks[name]
            assert not torch.equal(before[name][kept], history.rewind_weights[name][kept]), (index, name)


def test_random_mask_control_keeps_each_layers_count_at_other_places(run):
    history, calls = run
    for index, runs in by_round(calls).items():
        before, masks, _ = runs["random_mask"]
        for name in PRUNED:
            ticket = history.rounds[index - 1].masks[name]
            assert int(masks[name].sum()) == int(ticket.sum())
            assert not torch.equal(masks[name], ticket)
            kept = masks[name]
            assert torch.equal(before[name][kept], history.rewind_weights[name][kept])  # the original init


def test_the_same_seed_gives_the_same_history(data):
    def once(seed):
        history = lottery.lottery_ticket("mlp", data, 0.36, rounds=2, epochs=1, seed=seed, progress=False)
        rows = [{k: v for k, v in row.items() if k != "seconds"} for row in history.to_dicts()]
        return rows, history

    (rows, first), (again, second) = once(3), once(3)
    assert rows == again and (first.dense_val, first.dense_test) == (second.dense_val, second.dense_test)
    for a, b in zip(first.rounds, second.rounds):
        assert all(torch.equal(a.masks[n], b.masks[n]) for n in PRUNED)
    other, _ = once(4)
    assert other != rows


def test_a_given_model_is_copied_and_left_untouched(data):
    model = wb.build_model("mlp")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    history = lottery.lottery_ticket(model, data, 0.2, rounds=1, epochs=1, progress=False)
    assert history.model == "MLP" and not get_masks(model)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(history.rewind_weights[k], v) for k, v in state.items())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sparsity": 1.0}, "sparsity must be in"),
        ({"sparsity": -0.1}, "sparsity must be in"),
        ({"rounds": 0}, "rounds must be"),
        ({"rewind": -1}, "rewind must be"),
        ({"rewind": 21}, "rewind must be an optimizer step from 0 to 20"),  # 1,257 / 64 → 20 steps per epoch
        ({"epochs": 0}, "epochs must be"),
        ({"lr": 0}, "lr must be"),
        ({"scope": "layer"}, "scope"),
        ({"name_or_model": "resnet"}, "unknown model 'resnet'"),
        ({"train_options": {"step_hook": None}}, "train_options takes no 'step_hook'"),
    ],
)
def test_bad_input_is_refused_in_one_line_before_any_work(data, monkeypatch, options, message):
    trained = []
    monkeypatch.setattr(lottery, "train", lambda *args, **kwargs: trained.append(1))
    model = wb.build_model("mlp")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    arguments = {"name_or_model": model, "data": data, "sparsity": 0.5, "rounds": 2, "epochs": 1, **options}
    with pytest.raises(ValueError, match=message) as error:
        lottery.lottery_ticket(**arguments)
    assert "\n" not in str(error.value) and not trained
    assert not get_masks(model) and all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_plot_draws_ticket_and_controls_against_weights_remaining(run):
    history, _ = run
    fig = history.plot()
    ticket, reinit, random, dense = fig.axes[0].lines
    assert [line.get_label() for line in (ticket, reinit, random)] == [lottery.LABELS[r] for r in lottery.RUNS]
    assert ticket.get_xdata().tolist() == pytest.approx([100, 80, 64, 51.2], abs=0.01)
    assert random.get_ydata()[-1] == pytest.approx(100 * history.rounds[-1].test["random_mask"])
    assert dense.get_ydata()[0] == pytest.approx(100 * history.dense_test)
    assert fig.axes[0].get_xaxis().get_scale() == "log"


def test_saved_history_loads_unchanged_without_pickled_code(run, tmp_path):
    history, _ = run
    path = tmp_path / "ticket.pt"
    history.save(path)
    loaded = wb.LotteryHistory.load(path)
    assert loaded.to_dicts() == history.to_dicts() and loaded.curves() == history.curves()
    for saved, back in zip(history.rounds, loaded.rounds):
        assert saved.masks.keys() == back.masks.keys()
        assert all(torch.equal(saved.masks[name], back.masks[name]) for name in saved.masks)
        assert all((saved.histograms[n] == back.histograms[n]).all() for n in saved.histograms)
        assert saved.loss == back.loss
    assert all(torch.equal(history.rewind_weights[k], v) for k, v in loaded.rewind_weights.items())
    (tmp_path / "other.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a saved lottery history"):
        wb.LotteryHistory.load(tmp_path / "other.pt")
    torch.save({"format": "something else"}, tmp_path / "dict.pt")
    with pytest.raises(ValueError, match=r"format 'workbench\.lottery/1' expected"):
        wb.LotteryHistory.load(tmp_path / "dict.pt")


def test_recording_has_the_dense_network_then_one_frame_per_round(run):
    history, _ = run
    recording = history.recording()
    assert recording.unit == "round" and recording.steps == list(range(ROUNDS + 1))
    assert recording.frames[0].sparsity == 0 and all(m.all() for m in recording.frames[0].masks.values())
    for frame, r in zip(recording.frames[1:], history.rounds):
        assert frame.sparsity == r.sparsity and frame.accuracy == r.val["ticket"] and frame.masks is r.masks
        pruned = int((~r.masks["fc1.weight"]).sum())
        assert frame.histograms["fc1.weight"][0] >= pruned, "pruned weights are exact zeros: the first bin"
        assert frame.histograms["fc1.weight"].sum() == r.masks["fc1.weight"].numel()
    plan = recording.schedule
    assert [plan(r.round) for r in history.rounds] == pytest.approx([r.sparsity for r in history.rounds], abs=1e-3)


def test_kept_per_input_matches_the_masks(run):
    history, _ = run
    kept = history.kept_per_input("fc1.weight")
    assert kept.shape == (ROUNDS, 64)
    for row, r in zip(kept, history.rounds):
        assert row == pytest.approx(r.masks["fc1.weight"].float().mean(0).numpy())
    with pytest.raises(ValueError, match="was not pruned"):
        history.kept_per_input("fc1.bias")


def test_recorded_runs_ship_and_load():
    for model, dataset, rounds in (("mlp", "digits", 12), ("mlp1d", "mnist1d", 8)):
        history = wb.recorded_lottery(model)
        assert (history.model, history.dataset, len(history.rounds)) == (model, dataset, rounds)
        assert all(r.masks.keys() == history.rounds[0].masks.keys() for r in history.rounds)
        kept = [int(r.masks["fc1.weight"].sum()) for r in history.rounds]
        assert kept == sorted(kept, reverse=True) and len(set(kept)) == rounds, "every round prunes more"
    with pytest.raises(ValueError, match="no recorded lottery run for 'cnn'; recorded: mlp, mlp1d"):
        wb.recorded_lottery("cnn")

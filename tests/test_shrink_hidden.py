"""The hidden (residual) width: exact behind RMSNorms, an explicit ``exact=False`` choice behind LayerNorms.

Hugging Face models are built from small configs (no download); ``transformers`` is a test-only dependency.
"""

import copy
import warnings

import hf_models
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import workbench as wb
from workbench.masks import apply_masks
from workbench.structure.graph import trace_groups
from workbench.structure.group_prune import GroupPruner
from workbench.structure.shrink import shrink_masked
from workbench.train import evaluate, fine_tune

transformers = pytest.importorskip("transformers")


def torch_pruning_removes(model, inputs, keep: str) -> float:
    """The fraction of parameters Torch-Pruning (DepGraph, L1, ``keep`` left whole) removes at 50 %."""
    tp = pytest.importorskip("torch_pruning")
    model = copy.deepcopy(model)
    model.config.use_cache = False  # Torch-Pruning traces tensors only
    before = sum(p.numel() for p in model.parameters())
    importance = tp.importance.MagnitudeImportance(p=1)
    ignored = [model.get_submodule(keep)]
    tp.pruner.MetaPruner(model, inputs, importance=importance, pruning_ratio=0.5, ignored_layers=ignored).step()
    return 1 - sum(p.numel() for p in model.parameters()) / before


def _logits(model, inputs):
    with torch.no_grad():
        out = model(*inputs)
    return out.logits if hasattr(out, "logits") else out


class PostNorm(nn.Module):
    """A Linear into a LayerNorm'd width, then a Linear out: the smallest hidden width."""

    def __init__(self):
        super().__init__()
        self.fc1, self.norm, self.fc2 = nn.Linear(8, 6), nn.LayerNorm(6), nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(self.norm(self.fc1(x)))


def test_a_layer_normed_width_is_whole_when_exact_and_sliced_everywhere_when_not():
    torch.manual_seed(0)
    model, x = PostNorm().eval(), torch.randn(5, 8)
    exact = trace_groups(model, x).groups[0]
    assert not exact.prunable and "layer_norm" in exact.reasons[0]
    group = trace_groups(model, x, exact=False).groups[0]
    assert group.prunable and group.changes and "mean and variance" in group.changes[0]
    kept = torch.tensor([0, 2, 5])
    small, report = shrink_masked(model, example_inputs=x, keep={group.id: kept}, exact=False)
    reference = PostNorm().eval()  # the same model written by hand at width 3
    reference.fc1, reference.norm, reference.fc2 = nn.Linear(8, 3), nn.LayerNorm(3), nn.Linear(3, 3)
    with torch.no_grad():
        reference.fc1.weight.copy_(model.fc1.weight[kept]), reference.fc1.bias.copy_(model.fc1.bias[kept])
        reference.norm.weight.copy_(model.norm.weight[kept]), reference.norm.bias.copy_(model.norm.bias[kept])
        reference.fc2.weight.copy_(model.fc2.weight[:, kept]), reference.fc2.bias.copy_(model.fc2.bias)
        assert torch.allclose(small(x), reference(x), atol=1e-6)
    assert report.changed == {group.id: group.changes}
    assert "NOT exact" in str(report)


class Residual(nn.Module):
    """An embedding Linear into a normalized residual stream, one MLP block, a norm and a head."""

    def __init__(self, width, norm):
        super().__init__()
        self.embed, self.norm1 = nn.Linear(5, width), norm(width)
        self.fc1, self.fc2 = nn.Linear(width, 7), nn.Linear(7, width)
        self.norm2, self.head = norm(width), nn.Linear(width, 3)

    def forward(self, x):
        h = self.embed(x)
        h = h + self.fc2(torch.relu(self.fc1(self.norm1(h))))
        return self.head(self.norm2(h))


def _sliced_by_hand(model, kept, rms):
    """The reference: every tensor of the stream sliced to ``kept``; an RMSNorm's weight × sqrt(D/D'), eps × D/D'."""
    ratio = model.embed.out_features / len(kept)
    small = copy.deepcopy(model)
    with torch.no_grad():
        small.embed = nn.Linear(5, len(kept))
        small.embed.weight.copy_(model.embed.weight[kept]), small.embed.bias.copy_(model.embed.bias[kept])
        small.fc1 = nn.Linear(len(kept), 7)
        small.fc1.weight.copy_(model.fc1.weight[:, kept]), small.fc1.bias.copy_(model.fc1.bias)
        small.fc2 = nn.Linear(7, len(kept))
        small.fc2.weight.copy_(model.fc2.weight[kept]), small.fc2.bias.copy_(model.fc2.bias[kept])
        small.head = nn.Linear(len(kept), 3)
        small.head.weight.copy_(model.head.weight[:, kept]), small.head.bias.copy_(model.head.bias)
        for name in ("norm1", "norm2"):
            norm = getattr(model, name)
            if rms:
                new = nn.RMSNorm(len(kept), eps=norm.eps * ratio)
                new.weight.copy_(norm.weight[kept] * ratio**0.5)
            else:
                new = nn.LayerNorm(len(kept), eps=norm.eps)
                new.weight.copy_(norm.weight[kept]), new.bias.copy_(norm.bias[kept])
            setattr(small, name, new)
    return small.eval()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(3, 9),
    rms=st.booleans(),
    data=st.data(),
)
def test_a_shrunk_stream_is_the_stream_sliced_by_hand(width, rms, data):
    """LayerNorm: plain slicing (exact=False). RMSNorm: slicing plus the rescaling, and equal to the masked model."""
    torch.manual_seed(width)
    norm = (lambda d: nn.RMSNorm(d, eps=1e-3)) if rms else nn.LayerNorm
    model = Residual(width, norm).eval()
    with torch.no_grad():
        for module in (model.norm1, model.norm2):
            module.weight.uniform_(0.5, 1.5)
    x = torch.randn(6, 5)
    kept = sorted(data.draw(st.sets(st.integers(0, width - 1), min_size=1, max_size=width - 1)))
    removed = torch.tensor(sorted(set(range(width)) - set(kept)))
    with torch.no_grad():  # the stream's producers lose the removed channels: they are zero everywhere
        for param in ("embed.weight", "embed.bias", "fc2.weight", "fc2.bias"):
            model.get_parameter(param).index_fill_(0, removed, 0.0)
    graph = trace_groups(model, x, exact=False)
    stream = next(g for g in graph.groups if any(m.module == "embed" for m in g.producers))
    assert bool(stream.changes) != rms and bool(stream.rms_norms) == rms
    small, report = shrink_masked(model, example_inputs=x, keep={stream.id: torch.tensor(kept)}, exact=False)
    assert bool(report.changed) != rms
    with torch.no_grad():
        assert torch.allclose(small(x), _sliced_by_hand(model, torch.tensor(kept), rms)(x), atol=1e-5)
        if rms:  # exact: it computes what the model with the zero channels computed
            assert torch.allclose(small(x), model(x), atol=1e-5)


def _vit():
    return hf_models.vit(), hf_models.images(4)


def _bert():
    return hf_models.bert(), hf_models.tokens(4)


def _convnext():
    return hf_models.convnext(), hf_models.images(4)


def _gpt2():
    return hf_models.gpt2(), hf_models.tokens(4)


@pytest.mark.parametrize("name, build", [("ViT", _vit), ("BERT", _bert), ("ConvNeXt", _convnext), ("GPT-2", _gpt2)])
def test_layer_normed_models_shrink_as_far_as_torch_pruning_when_not_exact(name, build):
    torch.manual_seed(0)
    model, x = build()
    inputs = (x,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every op of these models is understood
        graph = trace_groups(model, inputs, exact=False)
        small, report = wb.shrink_with_report(model, inputs, sparsity=0.5, exact=False)
    removed = 1 - report.params_after / report.params_before
    keep = "lm_head" if name == "GPT-2" else "classifier"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Torch-Pruning's own warnings
        reference = torch_pruning_removes(model, inputs, keep)
    assert removed >= max(reference - 1e-9, 0.4)  # as far as Torch-Pruning goes (GPT-2: it removes nothing)
    not_exact = {g.id for g in graph.groups if g.changes}
    assert not_exact and set(report.changed) == not_exact  # every LayerNorm'd group, and only those
    assert _logits(small, inputs).shape == _logits(model, inputs).shape
    exact_small, exact_report = wb.shrink_with_report(model, inputs, sparsity=0.5)
    assert not exact_report.changed and exact_report.params_after > report.params_after
    masked = copy.deepcopy(model)
    apply_masks(masked, GroupPruner(model, "l1", inputs).masks(0.5))
    expected, got = _logits(masked, inputs), _logits(exact_small, inputs)
    assert ((got - expected).abs().max() / expected.abs().max()).item() < 1e-5  # the exact groups stay exact


def test_a_tied_lm_head_stays_tied_to_the_shrunk_embedding_and_generates(tmp_path):
    torch.manual_seed(0)
    model, x = _gpt2()
    small = wb.shrink(model, (x,), sparsity=0.5, exact=False)
    assert small.lm_head.weight is small.transformer.wte.weight
    assert small.transformer.wte.weight.shape == (100, 32) and small.transformer.wte.embedding_dim == 32
    assert (small.config.n_embd, small.config.n_head) == (32, 2)  # head width 32 / 2 = 16, as before
    prompt = torch.randint(1, 100, (1, 5))
    with torch.no_grad():
        out = small.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0, use_cache=True)
    assert out.shape == (1, 11)
    wb.save_shrunk(small, tmp_path / "gpt2.pt")
    again = wb.load_shrunk(tmp_path / "gpt2.pt", template=model)
    assert again.lm_head.weight is again.transformer.wte.weight
    assert torch.equal(_logits(again, (x,)), _logits(small, (x,)))


def _llama():
    return hf_models.llama(), (hf_models.tokens(2),)


def test_a_shrunk_llama_keeps_its_config_and_reloads_exactly(tmp_path):
    """With the cache on (the default): the config follows the shapes, ``generate`` matches the masked
    model, and both ``save_pretrained`` → ``from_pretrained`` and ``save_shrunk`` → ``load_shrunk`` round-trip."""
    torch.manual_seed(0)
    model, inputs = _llama()
    assert model.config.use_cache
    small, report = wb.shrink_with_report(model, inputs, sparsity=0.5)
    assert not report.changed and not report.notes
    config = small.config
    assert (config.hidden_size, config.intermediate_size) == (32, 64)
    assert (config.num_attention_heads, config.num_key_value_heads) == (2, 1)
    assert config.rms_norm_eps == pytest.approx(2 * model.config.rms_norm_eps)
    assert model.config.hidden_size == 64  # the original is untouched
    masked = copy.deepcopy(model)
    apply_masks(masked, GroupPruner(model, "l1", inputs).masks(0.5))
    prompt = torch.randint(1, 100, (1, 6))
    settings = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": 0, "use_cache": True}
    with torch.no_grad():
        assert torch.equal(small.generate(prompt, **settings), masked.generate(prompt, **settings))
    small.save_pretrained(tmp_path / "hf")
    again = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "hf").eval()
    assert torch.equal(_logits(again, inputs), _logits(small, inputs))
    wb.save_shrunk(small, tmp_path / "llama.pt")
    back = wb.load_shrunk(tmp_path / "llama.pt", template=model)
    assert torch.equal(_logits(back, inputs), _logits(small, inputs))
    assert back.model.norm.variance_epsilon == small.model.norm.variance_epsilon
    assert back.config.hidden_size == 32


def test_fine_tuning_recovers_what_a_hidden_width_shrink_costs():
    model = wb.pretrained("transformer")
    data = wb.load_dataset("digits")
    dense = evaluate(model, data.test)
    small, report = wb.shrink_with_report(model, sparsity=0.25, exact=False)
    assert report.changed
    shrunk = evaluate(small, data.test)
    fine_tune(small, data, epochs=3, seed=0, progress=False)
    tuned = evaluate(small, data.test)
    assert shrunk < dense - 0.2  # the LayerNorm statistics changed: accuracy falls
    assert tuned > shrunk + 0.2  # and three epochs bring most of it back


def test_coupled_prune_masks_the_hidden_width_only_when_not_exact():
    model = wb.pretrained("transformer")
    wb.prune(model, 0.5, "l1", pattern="neuron", coupled=True, exact=False)
    assert int((model.norm.weight == 0).sum()) == 32  # the final LayerNorm lost half the hidden channels
    kept, report = wb.shrink_with_report(model)  # exact: the hidden width stays, and the note says how to remove it
    assert kept.norm.weight.shape == (64,) and not report.changed
    assert any("exact=False removes them anyway" in note for note in report.notes)
    small, report = wb.shrink_with_report(model, exact=False)
    assert small.norm.weight.shape == (32,) and len(report.changed) == 1
    with pytest.raises(ValueError, match="pass exact=False to remove its units anyway"):
        shrink_masked(wb.pretrained("transformer"), keep={report.graph.groups[0].id: [0, 1]})


def _mobilenet():
    return hf_models.mobilenet_v2(), hf_models.images(4)


def _llama_case():
    model, (tokens,) = _llama()
    return model, tokens


BUILDERS = {"MobileNetV2": _mobilenet, "ConvNeXt": _convnext, "ViT": _vit, "BERT": _bert, "GPT-2": _gpt2}
BUILDERS["Llama"] = _llama_case


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_shrunk_users_models_save_and_load_with_a_template(name, tmp_path):
    torch.manual_seed(0)
    model, x = BUILDERS[name]()
    small = wb.shrink(model, (x,), sparsity=0.5, exact=False)
    wb.save_shrunk(small, tmp_path / "small.pt")
    again = wb.load_shrunk(tmp_path / "small.pt", template=model)
    assert torch.equal(_logits(again, (x,)), _logits(small.eval(), (x,)))
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in small.state_dict().items()}


@pytest.mark.parametrize("name", ["ViT", "BERT", "GPT-2", "Llama"])
def test_the_updated_config_builds_a_model_of_the_shrunk_shapes(name):
    """After a uniform shrink the config describes the model: building from it gives the same tensors' shapes."""
    torch.manual_seed(0)
    model, x = BUILDERS[name]()
    small = wb.shrink(model, (x,), sparsity=0.5, exact=False)
    rebuilt = type(model)(small.config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in small.state_dict().items()}
    assert small.config.hidden_size == 32 and model.config.hidden_size == 64


def test_a_config_that_cannot_follow_the_shapes_says_so():
    model, x = _convnext()
    _, report = wb.shrink_with_report(model, (x,), sparsity=0.5, exact=False)
    assert any(note.startswith("config.hidden_sizes [16, 32, 64, 128] left as it was") for note in report.notes)
    _, exact_report = wb.shrink_with_report(model, (x,), sparsity=0.5)  # the stage widths stay: nothing to say
    assert not any("config." in note for note in exact_report.notes)


def test_not_exact_changes_nothing_where_every_group_is_exact():
    model = wb.pretrained("cnn")
    exact, loose = wb.shrink_with_report(model, sparsity=0.5), wb.shrink_with_report(model, sparsity=0.5, exact=False)
    assert not loose[1].changed and exact[1].layers == loose[1].layers
    x = wb.load_dataset("digits").test.tensors[0][:32]
    with torch.no_grad():
        assert torch.equal(exact[0].eval()(x), loose[0].eval()(x))

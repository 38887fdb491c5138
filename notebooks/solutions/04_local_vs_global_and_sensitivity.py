"""Solutions of the exercises of 04_local_vs_global_and_sensitivity.ipynb (the tests run the notebook with these
cells filled in)."""

# %% exercise: global_masks
def global_magnitude(weights, sparsity):
    """{name: bool mask}: the round(sparsity × N) smallest |w| of all N weights together are pruned."""
    everything = torch.cat([w.abs().flatten() for w in weights.values()])
    count = round(sparsity * everything.numel())
    order = everything.argsort(stable=True)  # one ranking of every layer's weights
    keep = torch.ones(everything.numel(), dtype=torch.bool)
    keep[order[:count]] = False
    masks, start = {}, 0
    for name, w in weights.items():
        masks[name] = keep[start:start + w.numel()].view(w.shape)
        start += w.numel()
    return masks

# %% exercise: cnn_allocation
global_60, _ = pruned("cnn", sparsity=0.6, scope="global")  # global magnitude spreads 60 % well
my_allocation = {l.name.removesuffix(".weight"): l.pruned / l.total for l in global_60.layers}

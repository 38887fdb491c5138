"""Solutions of the exercises of 01_what_is_pruning.ipynb (the tests run the notebook with these cells filled in)."""

# %% exercise: magnitude_mask
def magnitude_mask(weight, sparsity):
    """A bool mask (True = kept) that prunes the round(sparsity × n) weights of smallest |w|."""
    pruned = round(sparsity * weight.numel())
    order = weight.abs().flatten().argsort()  # smallest |w| first
    mask = torch.ones(weight.numel(), dtype=torch.bool)
    mask[order[:pruned]] = False
    return mask.view(weight.shape)

# %% exercise: fc3_sparsity
my_sparsity = 1 - 137 / 1000  # fc3 loses round(s × 1000) weights; 137 must stay

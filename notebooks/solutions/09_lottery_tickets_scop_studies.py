"""Solutions of the exercises of 09_lottery_tickets_scop_studies.ipynb (the tests run the notebook with these cells
filled in)."""

# %% exercise: next_ticket_mask
def next_ticket_mask(weight, mask, sparsity):
    """The layer's next mask: the largest |w| among the kept weights, n − round(sparsity·n) of them."""
    keep = weight.numel() - round(sparsity * weight.numel())
    scores = weight.abs().masked_fill(~mask, -1.0).flatten()  # pruned weights rank below every kept one
    new = torch.zeros(weight.numel(), dtype=torch.bool)
    new[scores.topk(keep).indices] = True
    return new.view(weight.shape)

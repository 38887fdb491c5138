"""Solutions of the exercises of 10_what_pruning_buys.ipynb (the tests run the notebook with these cells filled in)."""

# %% exercise: sparse_bytes
def sparse_bytes(mask, value_bytes=4):
    """Bytes of the dense, bitmask and indices ways to store a tensor whose kept elements are ``mask``."""
    n, kept = mask.numel(), int(mask.sum())
    positions = mask.flatten().nonzero().flatten()
    gaps = torch.diff(positions, prepend=torch.tensor([-1])) - 1  # elements skipped before each kept one
    largest = int(gaps.max()) if kept else 0
    width = next(size for size in (1, 2, 4, 8) if largest < 256**size)
    values = kept * value_bytes
    return {"dense": n * value_bytes, "bitmask": (n + 7) // 8 + values, "indices": kept * width + values}

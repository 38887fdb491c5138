"""Solutions of the exercises of 11_bring_your_own_model.ipynb (the tests run the notebook with these cells filled in)."""

# %% exercise: rms_norm_rescale
def rms_norm_rescale(weight, eps, kept):
    """The weight and epsilon of an RMSNorm over the ``kept`` channels that computes what the full one did."""
    ratio = weight.numel() / kept.numel()  # D / D': the mean of squares over the kept channels grows by this
    return weight[kept] * ratio**0.5, eps * ratio

"""Solutions of the exercises of 08_regularization.ipynb (the tests run the notebook with these cells filled in)."""

# %% exercise: soft_threshold
my_soft_threshold = [0.45, 0.0, 0.0, -0.15, 0.0]

# %% exercise: cut_threshold
my_threshold = float(neuron_norms[-1]["fc1"].sort().values[199])  # the 200th smallest norm

# %% exercise: group_lasso_penalty
def group_lasso_penalty(weight):
    """Σ over output neurons (rows; filters of a convolution) of the row's Euclidean norm."""
    return weight.flatten(1).norm(dim=1).sum()

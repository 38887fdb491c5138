"""Solutions of the exercises of 05_structured_shrinking.ipynb (the tests run the notebook with these cells filled
in)."""

# %% exercise: cut_neurons
def cut_neurons(weights, biases, keep):
    """Weights and biases of an MLP without the hidden neurons missing from keep (one index tensor per hidden layer)."""
    weights, biases = list(weights), list(biases)
    for i, kept in enumerate(keep):
        weights[i], biases[i] = weights[i][kept], biases[i][kept]  # the neuron's row and bias
        weights[i + 1] = weights[i + 1][:, kept]  # and its column in the next layer
    return weights, biases

# %% exercise: toy_params_lost
my_toy_answer = 2 + 1 + 2  # the row of W1, the bias entry, the column of W2

# %% exercise: residual_channel
# stem.0 filter (1×3×3) + stem.1 γ, β + block1.conv2 filter (32×3×3) + block1.bn2 γ, β
# + block1.conv1 input channel (32 filters × 3×3) + down.0 input channel (64 filters × 3×3)
my_residual_answer = 9 + 2 + 288 + 2 + 288 + 576

"""Solutions of the exercises of 00_tour.ipynb (the tests run the notebook with these cells filled in)."""

# %% exercise: tour_scan
def largest_within(accuracy, dense_accuracy, tolerance=0.01):
    """The largest sparsity of the grid 0, 0.01, …, 0.99 whose accuracy(s) is at least dense_accuracy - tolerance."""
    grid = np.round(np.arange(0.0, 1.0, 0.01), 2)
    return max(s for s in grid if accuracy(s) >= dense_accuracy - tolerance)

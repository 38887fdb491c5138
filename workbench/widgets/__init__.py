"""ipywidgets apps: thin controls over library calls."""

"""Matplotlib figures: pure functions, data in, Figure out."""

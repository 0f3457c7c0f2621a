"""Spike trains -> states, distributions, divergences, statistics (elephant) and plots.

Imports neither protocols nor any backend: works on neo objects and numpy arrays."""

"""Experiments: calibration, sampling, CD training, microcircuit learning, validation."""

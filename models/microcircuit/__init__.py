"""Dendritic cortical microcircuits (Sacramento et al. 2018): Brian2 equations and numpy twin."""

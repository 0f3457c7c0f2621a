"""Cell and synapse types of the BrainScaleS-2 dialect (``pynn.standardmodels.cells`` / ``.synapses``)."""

from . import cells, synapses  # noqa: F401

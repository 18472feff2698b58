# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -c requirements-torch.txt

.PHONY: demo test test-slow lint install

$(BIN)/.installed: pyproject.toml requirements-torch.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-torch.txt
	$(PIP) -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/torchspike train --recipe digits --threads 1 --out runs/demo --overwrite

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

test: install lint
	$(BIN)/pytest -q -m "not slow"

# the slower end-to-end checks (real torchrun, full CLI runs); .ci/run runs them after `make test`
test-slow: install
	$(BIN)/pytest -q -m slow

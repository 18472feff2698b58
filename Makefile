# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -c requirements-torch.txt

.PHONY: demo test test-slow lint install docs docs-browser tutorials tutorials-full

# what the demo needs: torch, torchspike and matplotlib (for `torchspike plot`)
$(BIN)/.installed-demo: pyproject.toml requirements-torch.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-torch.txt
	$(PIP) -e '.[plot]'
	touch $@

# and the dev tools (pytest, ruff, ...) for `make test`
$(BIN)/.installed: $(BIN)/.installed-demo
	$(PIP) -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed-demo
	$(BIN)/torchspike train --recipe digits --threads 1 --out runs/demo --overwrite
	$(BIN)/torchspike plot runs/demo
	@echo "figures in runs/demo/*.png. The commands are in $(VENV), which make does not activate:"
	@echo "  $(BIN)/torchspike eval runs/demo    (or first: . $(BIN)/activate, then torchspike ...)"

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

test: install lint
	$(BIN)/pytest -q -m "not slow"

# the slower end-to-end checks (real torchrun, full CLI runs); .ci/run runs them after `make test`
test-slow: install
	$(BIN)/pytest -q -m slow

# The documentation site, offline, into build/docs/html: warnings are errors, references nitpicky,
# internal links checked (docs/_ext/check_links.py); the tutorials run in their small mode.
# Also installs Debian's chromium for tests/test_docs_site.py (browsers fetched by pip fail here).
DOCS_OUT ?= build/docs
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml requirements-torch.txt
	$(PIP) -e '.[dev,docs]'
	touch $@

docs-browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@chromium --version 2>/dev/null

docs: $(BIN)/.docs-installed docs-browser
	rm -rf $(DOCS_OUT)
	$(BIN)/sphinx-build -b html -W --keep-going -n -q \
		-d $(DOCS_OUT)/doctrees docs $(DOCS_OUT)/html

# Every tutorial (docs/tutorials/NN_name.py) in its small mode, as CI runs them
# (tests/test_tutorials.py does the same under pytest -m slow).
tutorials: install
	@for f in docs/tutorials/[0-9][0-9]_*.py; do \
		echo "== $$f"; MPLBACKEND=Agg OMP_NUM_THREADS=1 $(BIN)/python $$f >/dev/null || exit 1; \
	done

# Full mode: each tutorial on its recipes' run directories (RUNS, trained there when missing)
# and the data in DATA; figures go to docs/tutorials/full/NN_name/.
RUNS ?= runs
DATA ?= ../shared/data
tutorials-full: install
	@for f in docs/tutorials/[0-9][0-9]_*.py; do \
		n=$$(basename $$f .py); echo "== $$f -> docs/tutorials/full/$$n"; \
		MPLBACKEND=Agg TORCHSPIKE_TUTORIAL=full TORCHSPIKE_RUNS=$(RUNS) TORCHSPIKE_DATA=$(DATA) \
		TORCHSPIKE_TUTORIAL_SAVE=docs/tutorials/full/$$n \
		$(BIN)/python $$f > docs/tutorials/full/$$n.out 2>&1 || exit 1; \
	done

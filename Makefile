# hashhub — two commands: `make demo` and `make test`. Everything else is set up here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo demo-protocol demo-serve test lint typecheck pytest bench vectors system-deps clean

# The virtual environment, rebuilt when the project's dependencies change.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[node,dev]'
	touch $(STAMP)

# Programs the tests call that Python cannot install: openssl and jq (the auditor's
# by-hand checks are tested with them) and chromium (the web pages are tested in a
# real browser, driven by Playwright; no browser is downloaded). Installed from the
# system packages if absent.
system-deps:
	@missing=""; \
	for tool in openssl jq chromium; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# A hub and a node on loopback: a list, a match, a counted takedown, a webhook.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The same, left running until Ctrl-C.
demo-serve: $(STAMP)
	$(BIN)/python scripts/demo.py --serve

# The signed files by hand: keys, three versions, verification, openssl.
demo-protocol: $(STAMP) system-deps
	$(BIN)/python scripts/protocol_walkthrough.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps
	$(BIN)/pytest

test: lint typecheck pytest

# Benchmarks (not tests): faiss-cpu as the matcher's peer, wrk as a second load generator.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[node,dev,bench]'
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python bench/protocol_bench.py
	$(BIN)/python bench/hub_bench.py
	$(BIN)/python bench/node_bench.py

vectors: $(STAMP)
	$(BIN)/python scripts/make_vectors.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache .hypothesis

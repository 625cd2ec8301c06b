# hashhub — two commands: `make demo` and `make test`. Everything else is set up here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo demo-once demo-federation demo-protocol test lint typecheck pytest bench vectors system-deps build-deps clean

# The virtual environment, rebuilt when the project's dependencies change. The install
# also compiles the matcher's multi-index kernel (node/kernel_build.py, a hatchling
# build hook; without a C compiler the node matches with numpy), so a change to its
# source reinstalls too.
$(STAMP): pyproject.toml node/multiindex_kernel.c node/kernel_build.py | build-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[node,dev,tx]'
	touch $(STAMP)

# What the node's video hashing is built with: the vpdq package comes as source only
# and pip builds it with cmake against FFmpeg's libraries (Debian's ffmpeg and its -dev
# packages; ffmpeg itself also makes the tests' videos). Installed from the system
# packages if absent, before the virtual environment.
FFMPEG_DEV := libavcodec-dev libavformat-dev libavdevice-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev
build-deps:
	@missing=""; \
	for tool in ffmpeg cmake pkg-config; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	for lib in libavcodec libavformat libavdevice libavutil libswscale libswresample libavfilter; do \
	  pkg-config --exists $$lib 2>/dev/null || { missing="$$missing $(FFMPEG_DEV)"; break; }; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends \
	    ffmpeg cmake pkg-config $(FFMPEG_DEV) >/dev/null; \
	fi

# Programs the tests call that Python cannot install: openssl and jq (the auditor's
# by-hand checks are tested with them), chromium (the web pages are tested in a
# real browser, driven by Playwright; no browser is downloaded), nginx (a real mirror
# in tests/deploy) and docker-compose (`docker-compose config` checks
# docker/compose.yaml; no container engine is needed, so the engine it recommends is
# not installed). nginx's binary is /usr/sbin/nginx, not on every user's PATH.
# Installed from the system packages if absent.
system-deps:
	@missing=""; bare=""; \
	for tool in openssl jq chromium; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	command -v docker-compose >/dev/null 2>&1 || bare="$$bare docker-compose"; \
	command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || bare="$$bare nginx"; \
	if [ -n "$$missing$$bare" ]; then \
	  echo "installing$$missing$$bare"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq \
	  && { [ -z "$$missing" ] || $$SUDO apt-get install -y -qq $$missing >/dev/null; } \
	  && { [ -z "$$bare" ] || $$SUDO apt-get install -y -qq --no-install-recommends $$bare >/dev/null; }; \
	fi

# The story on loopback: a hub, an untrusted mirror, two platforms' nodes, a
# submission, a publish, a webhook, a blocked upload, acks and an audit; then the
# dashboard stays up until Ctrl-C. `make demo-once` stops at the end instead.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

demo-once: $(STAMP)
	$(BIN)/python scripts/demo.py --no-serve

# A federation: three hubs (a helpline, a hotline, a regional hub re-publishing both)
# and three platforms, a contribution, a withdrawal through the chain, the auditor's
# check of the chain and of a tampered copy. Its files stay in demo-federation-out/.
demo-federation: $(STAMP)
	$(BIN)/python -m scripts.demo_federation

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

# Benchmarks (not tests): the matcher's peers (faiss-cpu, threatexchange: the `bench`
# extra) and wrk as a second load generator, then every bench in bench/, one at a time;
# bench/report.py rewrites docs/benchmarks.md from their figures. The full run takes
# a while (about 31 minutes: the matcher at 10M hashes, a 10-minute soak of the hub
# under 500 nodes) and needs about 10 GB of free memory (threatexchange's index at 10M).
# Options for bench/report.py go in BENCH_ARGS, e.g. make bench BENCH_ARGS=--quick.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[node,dev,tx,bench]'
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python bench/report.py $(BENCH_ARGS)

vectors: $(STAMP)
	$(BIN)/python scripts/make_vectors.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache .hypothesis

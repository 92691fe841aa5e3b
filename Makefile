# VFM Lens — two commands: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -c constraints.txt
HOST ?= 127.0.0.1
PORT ?= 8501
MODELS ?= clip_vit_b32 dinov2_small sam_vit_b

.PHONY: setup setup-dev setup-scale run lecture-pack test test-random test-fast browser-deps weights bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip

$(VENV)/.run-deps: requirements.txt constraints.txt | $(PY)
	$(PIP) -r requirements.txt
	@touch $@

$(VENV)/.dev-deps: requirements-dev.txt $(VENV)/.run-deps
	$(PIP) -r requirements-dev.txt
	@touch $@

# Ray Data, LanceDB, datashader: batch embedding and stored datasets (python -m core.batch, Stored datasets page)
$(VENV)/.scale-deps: requirements-scale.txt $(VENV)/.dev-deps
	$(PIP) -r requirements-scale.txt
	@touch $@

setup: $(VENV)/.run-deps
setup-dev: $(VENV)/.dev-deps
setup-scale: $(VENV)/.scale-deps

# The server's environment (measured in docs/PERFORMANCE.md, "A lecture hall at the protocol level"; bench/bench_hall.py
# and bench/bench_patch_search.py read this line): no garbage collection after every script run (Streamlit's default
# gc.collect() walks the ~500k objects torch and friends leave: ~0.2 s of CPU per click), and OpenMP threads that
# sleep when idle instead of spinning (spinning workers took the CPU from other sessions' requests; torch keeps all
# cores for one big op). Not in .streamlit/config.toml: the browser tests' servers keep Streamlit's default, because
# their run watcher (tests/browser/drive.py) can miss a run too short for the browser to paint its "running" state.
SERVE_ENV ?= STREAMLIT_RUNNER_POST_SCRIPT_GC=false OMP_WAIT_POLICY=PASSIVE

## run: set up (first time) and serve the dashboard on http://$(HOST):$(PORT); PACK=file.vfmpack opens a lecture pack
run: setup
	$(if $(PACK),eval "$$($(PY) -m core.lecture_pack open $(PACK))" && )env $(SERVE_ENV) $(VENV)/bin/streamlit run \
	  app.py --server.address $(HOST) --server.port $(PORT)

## lecture-pack: weights + images + precomputed results in one file, e.g.
##   make lecture-pack MODELS="dinov2_small sam_vit_b" IMAGES=photos PACK=lecture.vfmpack
PACK_OUT = $(if $(PACK),$(PACK),lecture.vfmpack)
lecture-pack: setup
	@test -n "$(IMAGES)" || { echo "IMAGES=folder is required"; exit 2; }
	$(PY) -m core.lecture_pack build --models $(MODELS) --images $(IMAGES) --out $(PACK_OUT)

## browser-deps: Debian's chromium for the browser tests (Playwright drives the system browser)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

## test: set up (first time) and run the whole suite, browser tests included
test: setup-dev setup-scale browser-deps
	$(PY) -m pytest -p no:randomly

## test-random: the whole suite in a shuffled order (pytest-randomly); `pytest --randomly-seed=N` repeats an order
test-random: setup-dev setup-scale browser-deps
	$(PY) -m pytest

test-fast: setup-dev setup-scale
	$(PY) -m pytest -p no:randomly -m "not browser and not slow"

## weights: prefetch weights into the cache for offline use, e.g. make weights MODELS="dinov2_small sam_vit_b"
weights: setup
	$(PY) -m core.weights $(MODELS)

bench: setup-dev
	for f in bench/bench_*.py; do m=$$(basename $$f .py); echo "== $$m"; $(PY) -m bench.$$m || exit 1; done

lint: setup-dev
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts

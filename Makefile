# adatad — `make demo` (main job on synthetic videos) and `make test` (the test suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.adatad-installed
# torch/torchvision pinned to the releases this machine kind has on local disk (a CUDA build that also runs on CPU)
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/adatad demo

test: setup
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check adatad tests tools benchmarks
	$(VENV)/bin/ruff format --check adatad tests tools benchmarks
	$(VENV)/bin/pyright

format: setup
	$(VENV)/bin/ruff format adatad tests tools benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Two commands do all the set-up on a fresh machine: `make app` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export VAE_HUB_DATA ?= $(if $(wildcard ../shared/data/MNIST/raw),../shared/data,data)

.PHONY: install app test lint train bench clean
install: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

app: install ## serve the Gradio demo on http://127.0.0.1:7860 with the bundled weights
	$(PY) app.py

test: install ## the whole test suite (real MNIST, real HTTP, real browser)
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .

train: install ## retrain the bundled weights (both regularizers, 50 epochs)
	$(PY) -m training.train --regularizer both --epochs 50 --out weights/

bench: install
	$(PY) benchmarks/bench_train.py

clean:
	rm -rf $(VENV) .pytest_cache

# Two commands do all the set-up on a fresh machine: `make app` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export VAE_HUB_DATA ?= $(if $(wildcard ../shared/data/MNIST/raw),../shared/data,data)

.PHONY: install app test test-fast lint train train-binarized bench clean
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

test-fast: install ## the unit layer, for an edit-test loop: tiny models, no MNIST, no weights, no servers, no gradio (nor hypothesis, used only outside it)
	$(PY) -m pytest -q -p no:hypothesispytest tests/unit

lint: install
	$(PY) -m ruff check .

train: install ## retrain the four bundled models (2-D and 4-D latent, both estimators, 50 epochs), then evaluate them
	$(PY) -m training.train --regularizer both --epochs 50 --out weights/ --ckpt-dir runs/checkpoints/grey
	$(PY) -m training.train --regularizer both --epochs 50 --hidden-dims 128 32 16 8 --out weights/z4 \
		--ckpt-dir runs/checkpoints/grey/z4
	for m in weights/sgvb weights/kl_wo_e weights/z4/sgvb weights/z4/kl_wo_e; do \
		$(PY) -m training.evaluate $$m --grad-variance --compile --save || exit 1; done

train-binarized: install ## the binarized-MNIST pair (the original 2-D network, 300 epochs), then K = 5000 IWAE
	$(PY) -m training.train --regularizer both --binarize --epochs 300 --out weights/binarized \
		--ckpt-dir runs/checkpoints/binarized
	for m in weights/binarized/sgvb weights/binarized/kl_wo_e; do \
		$(PY) -m training.evaluate $$m --iwae-k 5000 --grad-variance --compile --save || exit 1; done

bench: install
	$(PY) benchmarks/bench_train.py

clean:
	rm -rf $(VENV) .pytest_cache

# Two commands do all set-up on a fresh machine: `make run` (the lab) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# MNIST: $RNNLAB_DATA if set, else real MNIST beside the repo (no copy, no network), else ./data (download,
# or offline the 5,000-image sample). The tests look in the same places (tests/conftest.py).
DATA_DIR ?= $(or $(RNNLAB_DATA),$(if $(wildcard ../shared/data/mnist/*),../shared/data/mnist,data))
OUT ?= runs/lab

.PHONY: run test install browser benchmark clean

# rnnlab as pyproject.toml declares it, every version pinned by requirements.txt (a constraints file: it pins,
# it adds nothing). `make run` needs only this; the tests add their tools (the `test` extra) and TensorBoard.
# torch/torchvision come from pip; with their CUDA libraries they are ~4 GB, so pip's progress stays visible.
LAB := $(VENV)/.lab-installed
install: $(VENV)/.installed

$(LAB): requirements.txt pyproject.toml
	@echo "make: installing rnnlab and its pinned dependencies into $(VENV) (a few minutes on a fresh machine)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar on -c requirements.txt setuptools
	$(BIN)/python -m pip install --progress-bar on -c requirements.txt --no-build-isolation -e .
	touch $@

$(VENV)/.installed: $(LAB)
	@echo "make: adding the test tools and TensorBoard"
	$(BIN)/python -m pip install --progress-bar on -c requirements.txt --no-build-isolation -e '.[test,tensorboard]'
	touch $@

run: $(LAB)
	$(BIN)/rnnlab compare --models rnn,lstm --data-dir $(DATA_DIR) --out $(OUT)-$$(date +%Y%m%d-%H%M%S)

# Debian packages the tests use, installed here if missing (as root): Chromium for the page and report tests,
# Fashion-MNIST for the dataset tests.
browser:
	@command -v chromium >/dev/null 2>&1 && [ -d /usr/share/datasets/fashion-mnist ] || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dataset-fashion-mnist >/dev/null; } || \
	  echo "make: chromium or dataset-fashion-mnist is missing (apt-get install chromium dataset-fashion-mnist); their tests will fail or skip"

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The web page on the newest runs `make run` wrote (http://127.0.0.1:8000/; Ctrl-C stops it).
.PHONY: serve
serve: install
	$(BIN)/rnnlab serve

benchmark: install
	$(BIN)/python benchmarks/lab_vs_sheet.py --data-dir $(DATA_DIR) --epochs 5 --precision fp32 bf16 --overhead-steps 150 --overhead-rounds 3

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache

# docs/results.md: the lab over 5 seeds, the NumPy LSTM, more models, other datasets, a tuned LSTM (and its recipe on
# Fashion-MNIST), the 784-step views. CPU hours: one run at a time, resumable (stop it and run it again).
# Fashion-MNIST is Debian's dataset-fashion-mnist, read in place and installed here if missing (as root, like chromium
# for `browser`): no mirror needed. FASHION_DIR/KMNIST_DIR: other folders with those IDX files.
.PHONY: results
results: install
	@[ -n "$(FASHION_DIR)" ] || [ -d /usr/share/datasets/fashion-mnist ] || { [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; } || \
	  echo "make: Fashion-MNIST is missing (apt-get install dataset-fashion-mnist); its rows stay unmeasured"
	$(BIN)/python benchmarks/results.py --data-dir $(DATA_DIR) --kmnist-dir $(or $(KMNIST_DIR),data) \
	  --fashion-dir $(or $(FASHION_DIR),$$([ -d /usr/share/datasets/fashion-mnist ] && echo /usr/share/datasets/fashion-mnist || echo data))
	$(BIN)/python benchmarks/caption_results.py --data-dir $(DATA_DIR) --out runs/caption-results

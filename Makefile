# Two commands do all set-up on a fresh machine: `make run` (the lab) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# MNIST: $RNNLAB_DATA if set, else real MNIST beside the repo (no copy, no network), else ./data (download,
# or offline the 5,000-image sample). The tests look in the same places (tests/conftest.py).
DATA_DIR ?= $(or $(RNNLAB_DATA),$(if $(wildcard ../shared/data/mnist/*),../shared/data/mnist,data))
OUT ?= runs/lab

.PHONY: run test install browser benchmark clean

install: $(VENV)/.installed

# torch/torchvision are pinned and installed with pip (requirements.txt is the full pinned set).
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: install
	$(BIN)/rnnlab compare --models rnn,lstm --data-dir $(DATA_DIR) --out $(OUT)-$$(date +%Y%m%d-%H%M%S)

# The report test opens report.html in headless Chromium (Debian's package), installed here if missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "make: chromium is missing (apt-get install chromium); the report's browser test will fail"

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

# docs/results.md: the lab over 5 seeds, the NumPy LSTM, more models, other datasets, a tuned LSTM, the 784-step views. CPU hours:
# one run at a time, resumable (stop it and run it again). FASHION_DIR/KMNIST_DIR: folders with those IDX files.
.PHONY: results
results: install
	$(BIN)/python benchmarks/results.py --data-dir $(DATA_DIR) --fashion-dir $(or $(FASHION_DIR),data) --kmnist-dir $(or $(KMNIST_DIR),data)
	$(BIN)/python benchmarks/caption_results.py --data-dir $(DATA_DIR) --out runs/caption-results

# Two commands on a fresh machine: `make demo` and `make test`. Everything they need is installed
# into .venv by the `install` target (CPU torch 2.13 from the machine's wheel; on a GPU machine,
# install the matching CUDA torch into the venv first and `make install` keeps it).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DATA ?= data/physicsiq-synthetic
MODELS ?= checkpoints/tiny

.PHONY: install data models demo demo-magi1 lint format test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

data: install
	$(PY) -m pipeline synthetic-data out=$(DATA)

models: install
	$(PY) -m pipeline tiny-models out=$(MODELS)

demo: data models
	$(PY) -m pipeline run +experiment=demo benchmark.root=$(DATA) \
		generator.checkpoint=$(MODELS)/wan_i2v reward.checkpoint=$(MODELS)/vjepa2

demo-magi1: data models
	$(PY) -m pipeline run +experiment=demo_magi1 benchmark.root=$(DATA) \
		generator.checkpoint=$(MODELS)/magi1/dit generator.vae_checkpoint=$(MODELS)/magi1/vae \
		generator.t5_checkpoint=$(MODELS)/magi1/t5 generator.special_tokens=$(MODELS)/magi1/special_tokens.npz \
		reward.checkpoint=$(MODELS)/vjepa2

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install lint
	$(PY) -m pytest -q

clean:
	rm -rf runs wandb .pytest_cache

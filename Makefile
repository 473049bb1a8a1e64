# The two commands of the quick start:
#   make run    set up .venv (torch 2.13.0 CPU first, then obliviate) and run the default bench
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= runs/quickstart

.PHONY: run test bench-fashion clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test,lm,ray,guards,service]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/obliviate bench --dataset digits --methods all --seeds 1 --threads 1 --out $(OUT) --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache

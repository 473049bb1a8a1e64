# The two commands of the quick start:
#   make run    set up .venv (torch 2.13.0 CPU first, then obliviate), handle an erasure request end to end, run the default bench
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
	@# a data subject's erasure request handled end to end on the built-in data: plan, signed certificate
	$(BIN)/obliviate plan examples/requests/data_subject_erasure.json --explain --out $(OUT)/plan.json
	$(BIN)/obliviate handle examples/requests/data_subject_erasure.json --workdir $(OUT)/work \
		--out $(OUT)/certificate --key-file $(OUT)/keys/operator-ed25519.pem
	$(BIN)/obliviate certificate verify $(OUT)/certificate/certificate.json --key-file $(OUT)/keys/operator-ed25519.pem
	@# and the benchmark beside it: every removal method against retraining on digits
	$(BIN)/obliviate bench --dataset digits --methods all --seeds 1 --threads 1 --out $(OUT)/bench --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache

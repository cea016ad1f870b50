PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8765

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the importer with its dev tools

# An editable install leaves the importer's bytecode to its first import, and with
# PYTHONDONTWRITEBYTECODE set every command compiles ~280 modules again (0.15 s a start):
# written here once, as pip writes it for an installed package.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q importer

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check importer tests scripts
	$(BIN)/ruff format --check importer tests scripts
	$(BIN)/mypy importer

test: $(STAMP) lint bytecode ## Lint, then the whole test suite (chaos drills at reduced size)
	$(BIN)/pytest -q -n 4

chaos: $(STAMP) bytecode ## The reliability drills at full size
	CHAOS_FULL=1 $(BIN)/pytest -q -m 'chaos or chaos_full' -p no:cacheprovider -o addopts=''

bench: $(STAMP) bytecode ## Speed and memory benchmarks (prints figures)
	$(BIN)/python scripts/bench.py

demo: $(STAMP) bytecode ## Start the sandbox, import the sample manifest, show summary and stats
	bash scripts/demo.sh

format: $(STAMP) ## Apply ruff's formatting and import sorting
	$(BIN)/ruff check --fix importer tests scripts
	$(BIN)/ruff format importer tests scripts

.PHONY: help install bytecode lint test chaos bench demo format

# Two commands on a fresh machine: `make run` and `make test`. Both install into .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test check lint typecheck imports pytest bench load format clean elm elm-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The demo accepts CDS Hooks calls without a client JWT (explicit, and logged on every start).
run: install
	PRIORGATE_CDS_DEVELOPMENT_MODE=$${PRIORGATE_CDS_DEVELOPMENT_MODE:-true} $(BIN)/priorgate serve

test: check pytest

check: lint typecheck imports elm-check

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

# DTR content: translate questionnaires/content/**/*.cql to ELM JSON (Node, @cqframework/cql).
CQL_DIR := questionnaires/cql
$(CQL_DIR)/node_modules: $(CQL_DIR)/package-lock.json
	npm ci --prefix $(CQL_DIR)
	touch $@

elm: $(CQL_DIR)/node_modules
	node $(CQL_DIR)/compile.mjs

elm-check: $(CQL_DIR)/node_modules
	node $(CQL_DIR)/compile.mjs --check

pytest: install
	$(BIN)/python -m pytest

# Every bench/*.py once; each figure beside its baseline -> bench/results.json and bench/results.md.
bench: install
	$(BIN)/python bench/_report.py

# Bounded mixed-traffic run against PostgreSQL on loopback (PRIORGATE_TEST_DATABASE_URL); e.g.
# make load LOAD_ARGS="--rate 60 --seconds 60 --workers 2"
LOAD_ARGS ?= --rate 40 --seconds 30
load: install
	$(BIN)/python -m bench.load $(LOAD_ARGS)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache *.egg-info

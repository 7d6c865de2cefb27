# mailbot: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest services bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# git checks storage/ out for everyone to read; what it will hold is not.
demo: $(STAMP)
	chmod 700 storage
	$(BIN)/mailbot demo examples/inbox

services:
	scripts/test-services

LINTED := mailbot tests $(wildcard benchmarks)

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(STAMP)
	$(BIN)/mypy mailbot

pytest: $(STAMP) services
	$(BIN)/pytest -n 2 -q

test: lint typecheck pytest

bench: $(STAMP) services
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) storage/mailbot.sqlite3 storage/raw storage/outbox storage/attachments

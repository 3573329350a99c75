# `make test` and `make run` work on a fresh machine: they create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STORE ?= models
PORT ?= 8000

.PHONY: install test lint run train clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[serve,train,dev]'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

# Train the seed recipe when the store has no version yet, then serve on $(PORT).
run: install
	@if [ -z "$$($(BIN)/mnist-models --store $(STORE) list | grep -E '^ +[0-9]+ ')" ]; then \
		$(BIN)/mnist-train --recipe seed --store $(STORE) --promote production; \
	fi
	$(BIN)/mnist-serve --store $(STORE) --port $(PORT)

train: install
	$(BIN)/mnist-train --recipe best --store $(STORE) --promote production

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

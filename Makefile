# `make test` and `make run` work on a fresh machine: they create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STORE ?= models
PORT ?= 8000

.PHONY: install system-deps test lint run train clean

# Programs some integration tests start for real. Installed when missing and we are root
# (CI); elsewhere those tests skip with a note saying what to install.
# The browser test uses Debian's Chromium unless CHROMIUM names another Chromium-based browser.
# The DejaVu fonts render the typed digits of bench/wild.py (and the page's screenshots).
SYSTEM_PROGRAMS := prometheus promtool prometheus-pushgateway wrk nginx $(if $(CHROMIUM),,chromium)
SYSTEM_PACKAGES := prometheus prometheus-pushgateway wrk nginx fonts-dejavu-core $(if $(CHROMIUM),,chromium)
FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml deploy/lint/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[serve,train,dev]'
	npm ci --prefix deploy/lint --no-audit --no-fund --silent
	touch $@

system-deps:
	@missing=""; for p in $(SYSTEM_PROGRAMS); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	test -f $(FONT) || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; \
		else echo "note: missing$$missing (apt-get install $(SYSTEM_PACKAGES)); their tests will skip"; fi; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint system-deps
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

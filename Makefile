# Two entry points do all set-up on a fresh machine (Debian, Python >= 3.11):
#   make demo   - install into .venv and run the demo node with a simulated market
#   make test   - install into .venv (with test extras) and run the whole test suite
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	@$(PY) -m venv $(VENV) || (apt-get update && apt-get install -y python3-venv && $(PY) -m venv $(VENV))
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	@touch $(STAMP)

# npm packages (solc-js compiler, anvil node for the L1 tests; charting and signing
# libraries for the web UI); node and npm come from Debian if the machine lacks them.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || (apt-get update && apt-get install -y nodejs npm)
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

# Web UI: the pinned npm libraries' browser builds (and their licenses), copied to where
# the node serves the page (clearline/ui/static/vendor, gitignored).
UI_VENDOR := clearline/ui/static/vendor
UI_STAMP := $(UI_VENDOR)/.installed
$(UI_STAMP): $(NODE_STAMP)
	mkdir -p $(UI_VENDOR)
	cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs $(UI_VENDOR)/lightweight-charts.mjs
	cp node_modules/lightweight-charts/LICENSE $(UI_VENDOR)/lightweight-charts.LICENSE.txt
	cp node_modules/chart.js/dist/chart.umd.min.js $(UI_VENDOR)/chart.umd.min.js
	cp node_modules/chart.js/LICENSE.md $(UI_VENDOR)/chart.js.LICENSE.md
	cp node_modules/ethers/dist/ethers.min.js $(UI_VENDOR)/ethers.min.js
	cp node_modules/ethers/LICENSE.md $(UI_VENDOR)/ethers.LICENSE.md
	@touch $(UI_STAMP)

# Headless Chromium for the browser tests: Debian's package (Playwright drives it by path).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update && apt-get install -y chromium

# PostgreSQL server binaries (initdb, pg_ctl, postgres) for the postgres journal tests, which
# start their own throwaway server: Debian's package if missing, installed with a temporary
# policy-rc.d so the Debian cluster service is not started. Idempotent; a non-root user
# without the binaries gets a note (the tests skip then, but fail under CI=1).
PG_INITDB_GLOB ?= /usr/lib/postgresql/*/bin/initdb
postgres:
	@if ls $(PG_INITDB_GLOB) >/dev/null 2>&1 || [ -x "$$(pg_config --bindir 2>/dev/null)/initdb" ]; then :; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "note: PostgreSQL server binaries missing and not root: postgres journal tests will skip"; \
	else \
	  added=; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added=1; \
	  fi; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; rc=$$?; \
	  if [ -n "$$added" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	  exit $$rc; \
	fi

.PHONY: install demo test bench ui postgres
install: $(STAMP) $(NODE_STAMP) $(UI_STAMP)
ui: $(UI_STAMP)

demo: $(STAMP) $(UI_STAMP)
	$(VENV)/bin/clearline demo $(ARGS)

test: $(STAMP) $(NODE_STAMP) $(UI_STAMP) $(CHROMIUM) postgres
	$(VENV)/bin/pytest -n 2 $(ARGS)

bench: $(STAMP)
	$(VENV)/bin/python bench/run.py $(ARGS)

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

.PHONY: install demo test bench ui
install: $(STAMP) $(NODE_STAMP) $(UI_STAMP)
ui: $(UI_STAMP)

demo: $(STAMP) $(UI_STAMP)
	$(VENV)/bin/clearline demo $(ARGS)

test: $(STAMP) $(NODE_STAMP) $(UI_STAMP) $(CHROMIUM)
	$(VENV)/bin/pytest -n 2 $(ARGS)

bench: $(STAMP)
	$(VENV)/bin/python bench/run.py $(ARGS)

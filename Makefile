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

# npm packages (solc-js compiler, anvil node) for the L1 tests; node and npm come from
# Debian if the machine lacks them.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || (apt-get update && apt-get install -y nodejs npm)
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

.PHONY: install demo test bench
install: $(STAMP) $(NODE_STAMP)

demo: $(STAMP)
	$(VENV)/bin/clearline demo $(ARGS)

test: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/pytest -n 2 $(ARGS)

bench: $(STAMP)
	$(VENV)/bin/python bench/run.py $(ARGS)

# The README's two commands: `make demo` (set up + main job) and `make test`.
PYTHON ?= python3
VENV := .venv
# `make demo` installs what the product needs; `make test` adds the test tools and the BERTopic
# baseline of `voc eval` (it pulls torch, so a user who only runs the product never downloads it).
CORE := $(VENV)/.installed-core
DEV := $(VENV)/.installed-dev

.PHONY: demo test setup lint bench browser

$(CORE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e .
	touch $(CORE)

$(DEV): $(CORE)
	$(VENV)/bin/pip install --quiet -e '.[dev,topics]'
	touch $(DEV)

setup: $(DEV)

demo: $(CORE)
	$(VENV)/bin/voc quickstart

# The browser test (tests/test_web_e2e.py) drives Debian's /usr/bin/chromium with Playwright; Playwright's
# own browser download (`playwright install`) does not work here. Installing needs root (CI runs as root);
# without root the test is skipped with its reason.
browser:
	@test -x /usr/bin/chromium || { if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "make browser: /usr/bin/chromium is missing and installing it needs root (sudo make browser)"; fi; }

test: $(DEV) browser
	$(VENV)/bin/pytest -q -rs

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy voc mcp_servers agents eval app.py

bench: $(DEV)
	$(VENV)/bin/python bench/bench_foundation.py

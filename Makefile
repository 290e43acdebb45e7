# Two set-up commands (see README): `make demo` and `make test`.  Both create .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo demo-terminal test test-fast bench chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Stamps re-run the install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	touch $@

$(VENV)/.installed-lab: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[lab]'
	touch $@

## demo: a simulated task from queued to a saved MP4 in the terminal, then the quickstart
##       notebook in JupyterLab (no key needed; Ctrl-C stops the server)
demo: $(VENV)/.installed-lab demo-terminal
	@echo
	@echo "Opening notebooks/01_quickstart.ipynb in JupyterLab: open the http://127.0.0.1:8888/lab/... URL printed below."
	$(BIN)/jupyter lab notebooks/01_quickstart.ipynb --no-browser --ServerApp.ip=127.0.0.1 \
	  $$( [ "$$(id -u)" = 0 ] && echo --ServerApp.allow_root=True )

## demo-terminal: only the terminal part of the demo
demo-terminal: $(VENV)/.installed
	$(BIN)/runway-watch --demo --save runway_videos/

## test: every test, including real JupyterLab/Notebook 7 in Debian's Chromium
test: $(VENV)/.installed-test chromium
	$(BIN)/python -m pytest

## test-fast: everything but the browser and notebook-kernel tests
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not browser and not kernel and not colab"

## chromium: Debian's Chromium for the browser tests (Playwright's own download is not used)
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

clean:
	rm -rf $(VENV) .venv-* .pytest_cache tests/artifacts

# Two set-up commands (see README): `make demo` and `make test`.  Both create .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo demo-terminal test test-fast test-kernel kernel-envs bench chromium clean

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
#       The lab gets a free port and a fresh token chosen here, so the URL announced is the
#       real one (JupyterLab's own line scrolls away under its log).
demo: $(VENV)/.installed-lab
	$(BIN)/runway-watch --demo --save runway_videos/
	@PORT=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	TOKEN=$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(16))'); \
	echo; echo "Opening notebooks/01_quickstart.ipynb in JupyterLab: open" \
	  "http://127.0.0.1:$$PORT/lab/tree/notebooks/01_quickstart.ipynb?token=$$TOKEN"; \
	JUPYTER_TOKEN=$$TOKEN exec $(BIN)/jupyter lab notebooks/01_quickstart.ipynb --no-browser \
	  --ServerApp.ip=127.0.0.1 --ServerApp.port=$$PORT --ServerApp.port_retries=0 \
	  $$( [ "$$(id -u)" = 0 ] && echo --ServerApp.allow_root=True )

## demo-terminal: only the terminal part of the demo
demo-terminal: $(VENV)/.installed
	$(BIN)/runway-watch --demo --save runway_videos/

# Kernel test venvs (tests/kernel_envs.py, stdlib only): Colab's versions, and ipykernel 7.0.1.
# The script builds each with `$(PYTHON) -m venv` and writes the stamp (the requirement list);
# it rebuilds a venv when its requirements, the checkout or pyproject.toml changed.
.venv-colab/.installed: pyproject.toml tests/kernel_envs.py
	$(PYTHON) tests/kernel_envs.py --python $(PYTHON) colab

.venv-ipk70/.installed: pyproject.toml tests/kernel_envs.py
	$(PYTHON) tests/kernel_envs.py --python $(PYTHON) ipk70

## kernel-envs: the extra venvs the notebook-kernel tests run notebooks in
kernel-envs: .venv-colab/.installed .venv-ipk70/.installed

# Most tests wait on servers, kernels and browsers rather than compute (about 3 min of CPU
# in 8 min of wall time), so three pytest-xdist workers share two cores well; each test
# file stays on one worker (its module fixtures start once).  The benchmark smoke measures
# timing ratios, so it runs alone afterwards.
XDIST := -n 3 --dist loadfile

## test: every test, including real JupyterLab/Notebook 7 in Debian's Chromium
test: $(VENV)/.installed-test chromium .venv-colab/.installed .venv-ipk70/.installed
	$(BIN)/python -m pytest $(XDIST) -m "not serial"
	$(BIN)/python -m pytest -m serial

## test-fast: everything but the browser and notebook-kernel tests
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(XDIST) -m "not browser and not kernel and not colab and not serial"

## test-kernel: only the notebooks executed in real kernels (this venv, Colab's versions, ipykernel 7.0.1)
test-kernel: $(VENV)/.installed-test .venv-colab/.installed .venv-ipk70/.installed
	$(BIN)/python -m pytest -m "kernel or colab" tests/test_notebooks.py tests/test_colab_env.py

## bench: every benchmark at full size (a few minutes; the kernel one needs the test extras),
##        then benchmarks/RESULTS.md
bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run_all.py

## chromium: Debian's Chromium for the browser tests (Playwright's own download is not used)
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

clean:
	rm -rf $(VENV) .venv-* .pytest_cache tests/artifacts

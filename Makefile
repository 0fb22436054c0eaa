# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv if missing and install the toolkit into it (torch 2.13.0 where that exact build is
# installable, else the torch already in .venv or the newest one pip finds).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: demo test install clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: setup.cfg setup.py | $(VENV)/bin/python
	$(PY) -m pip install --upgrade pip >/dev/null 2>&1 || true
	@if $(PY) -c "import torch" >/dev/null 2>&1; then \
		echo "using the torch already in $(VENV): $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	elif $(PY) -m pip install torch==2.13.0; then \
		echo "installed torch 2.13.0"; \
	else \
		echo "torch 2.13.0 is not installable here; installing the newest torch pip finds"; \
		$(PY) -m pip install torch; \
	fi
	$(PY) -m pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/asearch demo --out $(DEMO_OUT)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

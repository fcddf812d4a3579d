# The two commands of the quick start are `make demo` and `make test`; both set up what they need.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench screens clean system-build system-test system-demo

# pip compiles pyscard against PC/SC, so its build packages come first (order-only: the
# probe runs every time but never forces a reinstall).
$(STAMP): setup.cfg pyproject.toml requirements/dev.lock | system-build
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is missing: install python3.11 and python3.11-venv (apt-get install python3.11 python3.11-venv)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements/dev.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

system-build:
	@deploy/dev/system-packages.sh build

system-test:
	@deploy/dev/system-packages.sh test

system-demo:
	@deploy/dev/system-packages.sh demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy kiosk station drivers backoffice ui firmware_tools simulators

unit: $(STAMP) system-test
	$(VENV)/bin/pytest

test: lint typecheck unit

# With a screen, the touchscreen app with every device simulated (and keys to drive them);
# without one, the same terminal core walked through three residents, headless.
demo: $(STAMP) system-demo
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
	  $(PY) -m simulators.demo.touchscreen; \
	else \
	  echo "No display here: running the headless demo (on a desktop, make demo opens the touchscreen app)."; \
	  $(PY) -m simulators.demo.headless; \
	fi

# A PNG of every screen of the touchscreen app and every page of the back office's
# dashboard (headless Chromium, a demo fleet), in both languages, for review.
screens: $(STAMP) system-test
	xvfb-run -a -s "-screen 0 1280x800x24" $(PY) -m tests.ui_screens --out build/screens
	$(PY) -m tests.dashboard_screens --out build/screens

bench: $(STAMP) system-test
	$(PY) -m tests.bench

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache

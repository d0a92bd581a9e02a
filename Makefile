# The two set-up commands of the README: `make demo` and `make test`.
# Each makes its own virtual environment, installs what it needs, and (as root) the Debian packages.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# python3-venv: to create the venv; libosmesa6: fast CPU rendering; Mesa EGL/GL: the fallback backend.
APT_PACKAGES := python3-venv libosmesa6 libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri
STAMP := $(VENV)/.installed

.PHONY: demo test system-deps install clean

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "warning: apt-get failed; rendering may fall back to EGL"; \
	else \
	  echo "Missing Debian packages; install them with: sudo apt-get install -y $$missing"; \
	fi

$(STAMP): pyproject.toml
	$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the local CPU wheel; an unpinned torch pulls several GB of CUDA builds.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/talkface render assets/sample_speech.wav --emotion happy:0.7 \
	  --text "$$(cat assets/sample_speech.txt)" --out demo.mp4
	@echo "Wrote demo.mp4"

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) demo.mp4 .pytest_cache

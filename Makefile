# Entry points: `make demo` and `make test` do all set-up on a fresh Debian 12 machine.
SHELL := /bin/bash
PY := .venv/bin/python
PLUGIN := changen
QGIS_PROFILE := $(CURDIR)/build/qgis-profile
DEMO_OUT ?= demo_out

.PHONY: setup demo test lint format qgis package clean

setup:
	@scripts/setup.sh

demo: setup
	$(PY) -m core demo -o $(DEMO_OUT)

# Tests run with a throw-away HOME (and QGIS config dirs inside it), so no user settings are read or written;
# GDAL_PAM_ENABLED=NO keeps QGIS/GDAL from writing .aux.xml statistics beside the shared (read-only) data.
test: setup
	@home=$$(mktemp -d -t changen-test-home.XXXXXX); trap 'rm -rf "$$home"' EXIT; \
	  HOME=$$home GDAL_PAM_ENABLED=NO QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q tests

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# QGIS runs on Debian's python3; it sees torch & co. through the venv's site-packages on PYTHONPATH.
qgis: setup
	scripts/qgis_profile.sh $(QGIS_PROFILE) $(CURDIR)
	PYTHONPATH=$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
	  $(if $(DISPLAY),,xvfb-run -a -s '-screen 0 1600x1000x24') \
	  qgis --profiles-path $(QGIS_PROFILE) --nologo --noversioncheck $(QGIS_ARGS)

package: setup
	$(PY) scripts/package.py --out dist

clean:
	rm -rf build dist demo_out .pytest_cache .ruff_cache

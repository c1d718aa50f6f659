# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test fuzz install db-start db-stop


run: install          ## start PostGIS, migrate, load the demo data, serve on :8000
	$(BIN)/tracker up

test: install         ## the whole test suite against a real PostGIS
	$(BIN)/tracker db ensure-postgis
	$(BIN)/tracker ensure-browser
	$(BIN)/tracker ensure-gis-tools
	$(BIN)/pytest

fuzz: install         ## the full schemathesis run (all checks, stateful, coverage; `make test` runs a small one)
	$(BIN)/tracker db ensure-postgis
	FUZZ_EXAMPLES=100 FUZZ_SCENARIOS=100 FUZZ_COVERAGE=1 $(BIN)/pytest tests/test_fuzz.py

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "Could not create a virtual environment: install python3-venv (sudo apt-get install python3-venv)"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	@touch $@

db-start: install     ## start the project-local PostGIS cluster
	$(BIN)/tracker db start

db-stop: install      ## stop it
	$(BIN)/tracker db stop

# segcourse -- every target sets up what it needs. Quick start: `make lab`, `make test`.
#
# The virtual environment is rebuilt only when requirements/ or pyproject.toml change
# (stamp files record what was installed).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PIP_FLAGS := --disable-pip-version-check -q
COURSE_STAMP := $(VENV)/.stamp-course
TEST_STAMP := $(VENV)/.stamp-test
PYTEST := $(BIN)/python -m pytest
# Figures must render inline in the kernels, as in JupyterLab: never run notebooks with MPLBACKEND=agg.
# nbval runs a notebook's cells in order in one kernel: xdist must keep each notebook on one worker (--dist loadfile).
INLINE := MPLBACKEND=module://matplotlib_inline.backend_inline
NBVAL_FLAGS := --dist loadfile --nbval-current-env --nbval-sanitize-with coursetools/nbval_sanitize.cfg --nbval-cell-timeout=600 -p no:cacheprovider
JOBS ?= 2

.PHONY: help install install-test install-offline wheelhouse test-wheelhouse lab test lint test-doctests test-package test-notebooks test-browser site test-site course gate solutions data backbones exercises exercises-check doctor lock clean distclean

help:
	@echo "make lab            set up (first time) and open JupyterLab on the course"
	@echo "make test           set up (first time) and run every test: ruff, doctests, package, exercises, notebooks (smoke mode)"
	@echo "make test-browser   run every notebook in JupyterLab in headless Chromium (widgets, sliders) and open the site"
	@echo "make site           build the course site (HTML, from the solutions' stored outputs) into build/site"
	@echo "make test-site      build the site and check every lesson page, figure and internal link"
	@echo "make course         run every solution notebook in the current mode; writes build/course-report.json"
	@echo "make gate           the CI quality gate: the course in quick mode, targets met, results equal to the stored ones"
	@echo "make solutions      run the solutions in quick mode and store their outputs (LESSONS=\"04 05\" for some)"
	@echo "make doctor         check the environment"
	@echo "make lock           re-resolve requirements/lock.txt from requirements/*.txt in a fresh virtual environment"
	@echo "make data           build the synthetic datasets into datasets/"
	@echo "make backbones      pre-train the course backbones of lessons 03 and 05 once (cached in datasets/backbones)"
	@echo "make exercises      regenerate the learner notebooks in notebooks/ from solutions/"
	@echo "make wheelhouse     download every pinned wheel into WHEELHOUSE (build/wheelhouse) for rooms with no internet"
	@echo "make install-offline WHEELHOUSE=DIR   set up .venv from a wheelhouse, index off (then make lab)"
	@echo "make test-wheelhouse  build/update the cached wheelhouse, install it offline into a fresh venv, check it"

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "segcourse needs Python >= 3.10; found " + sys.version.split()[0] + ". Set PYTHON=/path/to/python3.1x")'
	$(PYTHON) -m venv $(VENV)

$(COURSE_STAMP): $(VENV)/bin/python requirements/course.txt requirements/lock.txt pyproject.toml
	@echo "Installing the course's pinned dependencies into $(VENV) (torch with CUDA libraries: a few GB, a few minutes, once)..."
	$(PIP) install $(PIP_FLAGS) $(PIP_INDEX) -r requirements/course.txt -c requirements/lock.txt
	$(PIP) install $(PIP_FLAGS) $(PIP_INDEX) --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name segcourse --display-name "Python (segcourse)" >/dev/null
	@touch $@

$(TEST_STAMP): $(COURSE_STAMP) requirements/test.txt requirements/site.txt
	$(PIP) install $(PIP_FLAGS) -r requirements/test.txt -c requirements/lock.txt
	@touch $@

install: $(COURSE_STAMP)
install-test: $(TEST_STAMP)

# Rooms with no internet. On a connected machine, `make wheelhouse` puts every wheel the course installs (pinned:
# WHEELHOUSE_REQUIREMENTS with lock.txt as constraints, plus requirements/build.txt and segcourse's own wheel)
# into WHEELHOUSE for this Python and platform (coursetools/wheelhouse.py: stdlib and pip only, no .venv needed;
# a rerun downloads only what is missing). Copy the checkout with the folder; on each machine
# `make install-offline WHEELHOUSE=DIR` installs .venv from it with the index off (PIP_INDEX), then `make lab`.
WHEELHOUSE ?= build/wheelhouse
WHEELHOUSE_REQUIREMENTS ?= requirements/course.txt
PIP_INDEX ?=
wheelhouse:
	$(PYTHON) -m coursetools wheelhouse build --dest "$(WHEELHOUSE)" $(addprefix -r ,$(WHEELHOUSE_REQUIREMENTS))

install-offline:
	@$(PYTHON) -m coursetools wheelhouse check --dest "$(WHEELHOUSE)"
	@$(MAKE) --no-print-directory install PIP_INDEX='--no-index --find-links "$(abspath $(WHEELHOUSE))"'

# Extra JupyterLab options, e.g. `make lab LAB_ARGS="--no-browser --port 8899"`. As root (containers) add --allow-root.
LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(COURSE_STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(ROOT_FLAG) $(LAB_ARGS) notebooks/00_start_here.ipynb

# The quick smoke check. Notebooks are executed in smoke mode (tiny data, a few iterations); nbval runs in lax
# mode and compares the cells tagged nbval-check-output (the mode-independent ones, found by `make solutions`)
# with the stored quick-mode outputs. CI (.ci/run) also runs test-browser and the quality gate.
test: $(TEST_STAMP)
	@$(MAKE) --no-print-directory lint test-doctests test-package test-notebooks

# ruff (version pinned in requirements/test.txt, rules in pyproject.toml) over the code and the solution notebooks.
lint: $(TEST_STAMP)
	$(BIN)/ruff check segcourse coursetools tests benchmarks solutions course.py

# The >>> examples in the docstrings of segcourse and coursetools: offline, on synthetic data (setup in ./conftest.py).
test-doctests: $(TEST_STAMP)
	SEGCOURSE_MODE=smoke $(PYTEST) --doctest-modules segcourse coursetools -p no:cacheprovider

test-package: $(TEST_STAMP)
	SEGCOURSE_MODE=smoke $(PYTEST) tests -n $(JOBS) -m "not browser and not site and not wheelhouse"

# The offline route end to end (tests/coursetools/test_wheelhouse.py): builds or updates the wheelhouse in SEGCOURSE_WHEELHOUSE
# (default ~/.cache/segcourse/wheelhouse, kept between runs: a few GB the first time), installs it into a fresh
# venv with the index off and this machine's pip configuration ignored, installs the kernel, runs the doctor.
test-wheelhouse: $(TEST_STAMP)
	@start=$$(date +%s); OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTEST) tests/coursetools/test_wheelhouse.py -m wheelhouse \
	  -s -p no:cacheprovider --durations=0; rc=$$?; echo "make test-wheelhouse: $$(( $$(date +%s) - start )) s"; exit $$rc

test-notebooks: $(TEST_STAMP)
	$(INLINE) SEGCOURSE_MODE=smoke $(PYTEST) --nbval-lax $(NBVAL_FLAGS) -n $(JOBS) solutions
	$(INLINE) SEGCOURSE_MODE=smoke $(PYTEST) --nbval-lax $(NBVAL_FLAGS) -n $(JOBS) notebooks

# Every notebook of notebooks/ and solutions/ in JupyterLab, the course site and the service's demo page, in
# headless Chromium. The tests use /usr/bin/chromium (Debian's), the path checked here. BROWSER_JOBS pytest
# workers, each with its own JupyterLab and Chromium (one notebook kernel per core); prints each test's time.
BROWSER_JOBS ?= $(JOBS)
test-browser: $(TEST_STAMP)
	@test -x /usr/bin/chromium || { echo "Installing Debian's chromium for the browser test..."; \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || \
	  { echo "could not install chromium (needs root and Debian's package registry)"; exit 1; }; }
	@start=$$(date +%s); SEGCOURSE_MODE=smoke OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTEST) tests -m browser \
	  -n $(BROWSER_JOBS) --dist load --durations=0 --durations-min=2 -p no:cacheprovider; rc=$$?; \
	  echo "make test-browser: $$(( $$(date +%s) - start )) s with $(BROWSER_JOBS) workers"; exit $$rc

# The course site: Sphinx + myst-nb + the book theme (requirements/site.txt) over solutions/ with their stored
# outputs (nothing executed), offline, warnings are errors. Open build/site/index.html.
site: $(TEST_STAMP)
	$(BIN)/python -m coursetools site --out build/site

test-site: $(TEST_STAMP)
	$(PYTEST) tests -m "site and not browser" -p no:cacheprovider

course: $(COURSE_STAMP)
	$(BIN)/python -m coursetools course

# CI's quality gate: quick mode whatever the machine, every target met, every key result within its
# tolerance (solutions/tolerances.json) of the one stored in the committed solutions.
gate: $(COURSE_STAMP)
	$(BIN)/python -m coursetools course --mode quick --gate --out build/gate

# Store the solutions' quick-mode outputs and stamps, then regenerate the learner notebooks.
LESSONS ?=
solutions: $(TEST_STAMP)
	$(BIN)/python -m coursetools course --store $(LESSONS)

doctor: $(COURSE_STAMP)
	$(BIN)/python -m segcourse doctor

data: $(COURSE_STAMP)
	$(BIN)/python -m segcourse data build

backbones: $(COURSE_STAMP)
	$(BIN)/python -m segcourse backbones build

exercises: $(COURSE_STAMP)
	$(BIN)/python -m coursetools exercises build

# Re-resolve the pins after editing requirements/*.txt (needs the package registry). pip resolves every
# requirements file together in a fresh virtual environment, whatever .venv holds: --dry-run --report
# installs nothing (and downloads only metadata where the index serves it); the report becomes lock.txt.
LOCK_INPUTS := $(filter-out requirements/lock.txt,$(wildcard requirements/*.txt))
LOCK_VENV := build/lock-venv
LOCK_OUT ?= requirements/lock.txt
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install $(PIP_FLAGS) --dry-run --ignore-installed --report $(LOCK_VENV)/report.json \
	  $(addprefix -r ,$(LOCK_INPUTS))
	{ echo "# Generated by 'make lock': $(LOCK_INPUTS) resolved together in a fresh virtual environment."; \
	  echo "# Used as pip constraints so a fresh machine gets the same transitive versions."; \
	  $(LOCK_VENV)/bin/python -c 'import json, sys; pins = {(i["metadata"]["name"], i["metadata"]["version"]) for i in json.load(open(sys.argv[1]))["install"]}; print(*(f"{n}=={v}" for n, v in sorted(pins, key=lambda p: p[0].lower())), sep="\n")' $(LOCK_VENV)/report.json; \
	} > $(LOCK_VENV)/lock.txt
	mv $(LOCK_VENV)/lock.txt $(LOCK_OUT) && rm -rf $(LOCK_VENV)

clean:
	rm -rf build .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

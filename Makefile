# Isotropic Deep Learning course: set-up, tests and notebook execution.
# Needs only Python >= 3.11 (3.11 preferred: the pinned environment), pip and make.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
# Extra pip options, e.g. PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
# on a machine where pip would otherwise pick a CUDA build of torch.
PIP_ARGS ?=
STAMP  := $(VENV)/.isodl-installed
HEADLESS := ISODL_HEADLESS=1 OMP_NUM_THREADS=1 MPLBACKEND=module://matplotlib_inline.backend_inline

# nbval: compare the stored outputs of cells tagged for checking (nbval-check-output),
# with floats, addresses and timings sanitised; a cell times out after 600 s (a guard against hangs; budgets are reported by make course).
NBVAL_ARGS := --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=600 --nbval-kernel-name=python3

.PHONY: help setup doctor lab learn lint format test test-lib test-notebooks test-browser course paper execute student clean

help:
	@echo "make doctor    check this machine can run the course (Python, pinned packages, widgets, data, a short training run)"
	@echo "make learn     write the student copies (exercises open) and open JupyterLab on them: start here as a learner"
	@echo "make lab       set up .venv and open JupyterLab on notebooks/ (the solved copies)"
	@echo "make test      set up .venv and run the whole test suite (ruff lint and format check included)"
	@echo "make format    apply ruff format and ruff check --fix"
	@echo "make test-browser  run every notebook in JupyterLab in headless Chromium (needs /usr/bin/chromium)"
	@echo "make course    execute every notebook into build/course, write build/runtimes.md"
	@echo "make paper     execute every notebook at SCALE=\"paper\" into build/paper, write build/runtimes_paper.md (slow; not part of make test)"
	@echo "make student   write student copies (solutions removed) to build/student/ and instructor copies to build/instructor/"
	@echo "make execute   re-run notebooks in place before committing (NB=notebooks/00_start_here.ipynb for one)"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q $(PIP_ARGS) -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $(STAMP)

# JupyterLab refuses to run as root unless told; containers and CI machines often are root.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

learn: student
	$(BIN)/jupyter lab --notebook-dir=build/student $(LAB_ARGS)

doctor: $(STAMP)
	$(BIN)/python -m tools.doctor

# The code the linter and formatter look at (notebooks are checked by nbval, not ruff).
LINT_PATHS := lib tools tests scripts benchmarks

test: $(STAMP) lint
	$(HEADLESS) $(BIN)/python -m pytest tests notebooks --ignore=tests/browser $(NBVAL_ARGS)

# ruff (pinned in requirements.txt), configured in pyproject.toml; part of make test.
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

format: $(STAMP)
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

test-lib: $(STAMP)
	$(HEADLESS) $(BIN)/python -m pytest tests -m "not notebooks"

test-notebooks: $(STAMP)
	$(HEADLESS) $(BIN)/python -m pytest notebooks $(NBVAL_ARGS)

# End-to-end: JupyterLab (temporary settings and a copy of notebooks/) driven by Debian's Chromium
# through Playwright. Not headless on purpose: the live widgets are what it checks.
test-browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser -v

course: $(STAMP)
	$(HEADLESS) $(BIN)/python -m tools.course run --out build/course --report build/runtimes.md

# The same at SCALE="paper" (papermill parameter and ISODL_SCALE): the sizes closer to the papers'.
# Minutes per notebook on a CPU; the 60 s / 30 s budgets are course-scale, so the report gives times only.
paper: $(STAMP)
	$(HEADLESS) $(BIN)/python -m tools.course run --scale paper --out build/paper --report build/runtimes_paper.md

execute: $(STAMP)
	$(HEADLESS) $(BIN)/python -m tools.course execute $(NB)

student: $(STAMP)
	$(BIN)/python -m tools.student notebooks build/student --instructor build/instructor

clean:
	rm -rf build .pytest_cache

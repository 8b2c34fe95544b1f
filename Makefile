# Two commands do all the set-up on a fresh machine:
#   make reproduce   the main job: quick synthetic corpus + every notebook, executed into outputs/
#   make test        the whole test suite, notebooks included (what CI runs)
#   make book        the executed notebooks as an HTML book in outputs/book/ (runs the main job first if needed)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.merlib-installed

.PHONY: install reproduce book test test-fast bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	$(PY) -m merlib reproduce --quick --out outputs

book: $(STAMP)
	$(PY) -m merlib book --outputs outputs --reproduce-if-missing

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not notebooks"

clean:
	rm -rf outputs .pytest_cache

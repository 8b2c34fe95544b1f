# Two commands do all the set-up on a fresh machine:
#   make reproduce   the main job: quick synthetic corpus + every notebook, executed into outputs/
#   make test        the whole test suite, notebooks included (what CI runs)
#   make book        the executed notebooks as an HTML book in outputs/book/ (runs the main job first if needed)
#   make lab         JupyterLab on notebooks/, the kernel .venv's Python (more options: LAB_ARGS="--no-browser --port 8890")
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.merlib-installed
LAB_ARGS ?=

.PHONY: install reproduce book lab test test-fast bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	$(PY) -m merlib reproduce --quick --out outputs

book: $(STAMP)
	$(PY) -m merlib book --outputs outputs --reproduce-if-missing

# The server runs from the venv's Python, so its default kernel (python3, the kernel the notebooks name) is that
# Python: jupyter_client starts a kernelspec whose command is a bare `python` with the server's interpreter, and
# in a virtual environment jupyter_core looks for kernelspecs there before ~/.local/share/jupyter. The root is
# the repository, so the notebooks' links to ../merlib and ../docs open; the file browser starts in notebooks/.
# tests/test_jupyterlab.py runs this recipe.
lab: $(STAMP)
	$(PY) -m jupyterlab --ServerApp.root_dir=. --FileContentsManager.preferred_dir=notebooks $(LAB_ARGS)

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not notebooks"

clean:
	rm -rf outputs .pytest_cache

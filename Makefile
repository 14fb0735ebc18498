# Two commands matter on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint bench soak wheel clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check privacykit tests bench setup.py
	$(BIN)/ruff format --check privacykit tests bench setup.py
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n auto --dist worksteal

demo: $(STAMP)
	$(BIN)/python -m privacykit.demo

lint: $(STAMP)
	$(BIN)/ruff check privacykit tests bench setup.py
	$(BIN)/ruff format --check privacykit tests bench setup.py
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

soak: $(STAMP)
	$(BIN)/python -m bench.soak

# The wheel (playbooks/ and report_templates/ inside); .ci/wheel-check installs and runs it.
wheel: $(STAMP)
	rm -rf build
	$(BIN)/python -m pip wheel --no-deps --quiet --wheel-dir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

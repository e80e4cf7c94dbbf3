# make demo: set up (if needed) and train the NTM copy spec on the CPU for a few minutes.
# make test: set up (if needed) and run the test suite.
# make fuzz: set up (if needed) and fuzz the spec front end for long (Hypothesis, 5,000 new examples per test).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test fuzz seed-study lint setup clean gpu-check compile-check

setup: $(STAMP)

# The venv sees system packages, so a torch that is already installed is kept; only when
# none can be imported is the CPU build of torch 2.13.0 installed.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -n auto

# The suite runs tests/fuzz with a small, fixed set of examples (the ci profile); this runs new ones, many more.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -n auto tests/fuzz

# The seed studies of docs/results (10 NTM copy seeds, 5 DNC repeat-copy seeds), two runs side by side: about
# an hour and a half on 2 cores. The tables land in runs/seeds/*.md.
seed-study: $(STAMP)
	$(BIN)/python examples/seed_study.py specs/ntm_copy.yaml --seeds 0 1 2 3 4 5 6 7 8 9 --steps 5000 \
		--markdown runs/seeds/ntm_copy.md
	$(BIN)/python examples/seed_study.py specs/dnc_repeat_copy.cog --seeds 0 1 2 3 4 --steps 12000 \
		--markdown runs/seeds/dnc_repeat_copy.md

# Every spec in specs/ through torch.compile, and kernels per step on the compiled paths (CI: one spec per family).
compile-check: $(STAMP)
	COGDSL_COMPILE_CHECK=1 $(BIN)/python -m pytest -n auto tests/compiler/test_compiled_step.py \
		tests/kernels/test_launches.py tests/kernels/test_every_spec_on_triton.py tests/kernels/test_custom_ops.py \
		tests/kernels/test_compile_for_gpu.py

# On a machine with a CUDA GPU (torch and triton installed): the tests CI skips, a GPU run, cogdsl bench.
gpu-check:
	bash tests/gpu/check.sh

lint: $(STAMP)
	$(BIN)/ruff check cogdsl kernels tests examples

clean:
	rm -rf $(VENV) runs/demo

# make demo: set up (if needed) and train the NTM copy spec on the CPU for a few minutes.
# make test: set up (if needed) and run the test suite.
# make fuzz: set up (if needed) and fuzz the spec front end for long (Hypothesis, 5,000 new examples per test).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test fuzz seed-study tables check-plans lint setup clean gpu-check gpu-wheels compile-check

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
	$(BIN)/python -m pytest -n auto --dist loadgroup

# The suite runs tests/fuzz with a small, fixed set of examples (the ci profile); this runs new ones, many more.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -n auto tests/fuzz

# The results tables of docs/results/, each through cogdsl sweep from its plan in sweeps/ (docs/sweeps.md), then
# cogdsl table into runs/sweeps/PLAN/table.md and table.csv. At full length, 331 runs: the CPU times the
# results pages give add up to about 13 hours, so about 7 hours on 2 cores; run it again to continue (--resume:
# finished trials are not run again). A plan whose trials fail does not stop the others; make fails at the end.
# PLANS="sweeps/a.yaml sweeps/b.yaml" runs some.
PLANS ?= $(sort $(wildcard sweeps/*.yaml))
tables: $(STAMP)
	@failed=""; for plan in $(PLANS); do name=$$(basename $$plan .yaml); \
	  $(BIN)/python -m cogdsl sweep --plan $$plan --resume || failed="$$failed $$name"; \
	  $(BIN)/python -m cogdsl table runs/sweeps/$$name --force --markdown runs/sweeps/$$name/table.md \
	    --csv runs/sweeps/$$name/table.csv || failed="$$failed $$name"; \
	done; if [ -n "$$failed" ]; then echo "failed:$$failed" >&2; exit 1; fi

# Every plan's trials and table metrics checked as a sweep checks them before training (about a minute).
check-plans: $(STAMP)
	@scratch=$$(mktemp -d); failed=""; for plan in $(PLANS); do name=$$(basename $$plan .yaml); \
	  $(BIN)/python -m cogdsl sweep --plan $$plan --dry-run --out $$scratch/$$name > /dev/null \
	    || failed="$$failed $$name"; \
	done; rm -rf $$scratch; if [ -n "$$failed" ]; then echo "failed:$$failed" >&2; exit 1; fi; \
	echo "every plan checked: $(words $(PLANS)) plans"

# The seed studies of docs/results (10 NTM copy seeds, 5 DNC repeat-copy seeds): about an hour and a half on 2
# cores. The tables land in runs/sweeps/ntm_copy_seeds/table.md and runs/sweeps/dnc_repeat_copy_seeds/table.md.
seed-study:
	$(MAKE) tables PLANS="sweeps/ntm_copy_seeds.yaml sweeps/dnc_repeat_copy_seeds.yaml"

# Every spec in specs/ through torch.compile, a step's numbers through Inductor, every kernel size compiled for
# sm_90 and sm_80, and kernels per step on the compiled paths (CI: one spec per family, the specs' sizes).
compile-check: $(STAMP)
	COGDSL_COMPILE_CHECK=1 $(BIN)/python -m pytest -n auto --dist loadgroup tests/compiler/test_compiled_step.py \
		tests/kernels/test_launches.py tests/kernels/test_every_spec_on_triton.py tests/kernels/test_custom_ops.py \
		tests/kernels/test_compile_for_gpu.py

# On a machine with a CUDA GPU (torch and triton installed): the tests CI skips, a GPU run, cogdsl bench.
gpu-check:
	bash tests/gpu/check.sh

# For a GPU machine with no network whose image lacks some of cogdsl's packages (the lent H200's lacks lark):
# their wheels for its Python (3.12) into .whl/, downloaded here; tests/gpu/check.sh installs them there first.
GPU_WHEELS ?= lark==1.3.1
GPU_PYTHON ?= 3.12
gpu-wheels:
	$(PYTHON) -m pip download --no-deps --only-binary=:all: --python-version $(GPU_PYTHON) --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)

lint: $(STAMP)
	$(BIN)/ruff check cogdsl kernels tests examples

clean:
	rm -rf $(VENV) runs/demo

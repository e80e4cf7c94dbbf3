#!/usr/bin/env bash
# The GPU check (make gpu-check): everything that needs a CUDA GPU, as one script, with its reports
# written under $OUT (default gpu-report/). Run it on a machine with a GPU and torch + triton installed;
# CI never runs it (CI has no GPU).
#
#   1. the tests that are skipped without CUDA, and every kernel test with the kernels compiled for the GPU
#      (tests/kernels, the no-host-sync step on CUDA, the device tests: a CUDA stream, checkpoints across
#      devices), with a JUnit report;
#   2. a short training run with --device cuda, evaluated on the CPU (a checkpoint crosses devices);
#   3. cogdsl bench: the kernels against eager PyTorch and torch.compile, side by side, as JSON (the training
#      step's rows include --compile on the torch backend and on the Triton kernels);
#   4. the ahead-of-time compile check's resource usage (registers, spills) and kernels per step on every
#      path, compiled included (cogdsl bench --launches --compile);
#   5. the memory step replayed from a CUDA graph against eager and the Triton kernels, and repeated runs
#      checked bit-identical (tests/gpu/replay.py);
#   6. cogdsl sweep on the GPU: 2 learning rates x 2 seeds of a short ntm_copy, half a GPU per trial, and its
#      table (tests/gpu/sweep_check.py); skipped, and said so, where Ray is not installed (its wheel is larger
#      than what travels to the lent machine).
#
# Packages the machine lacks travel as wheels in .whl/ (ignored by git): `make gpu-wheels` downloads them where
# there is a network (GPU_WHEELS, GPU_PYTHON: lark for Python 3.12 by default), and they are installed into
# /tmp/site first. Budget: about 8 minutes on an H200.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-gpu-report}"
mkdir -p "$OUT"
PYTHON="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0

{ nvidia-smi; "$PYTHON" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__,
'device', torch.cuda.get_device_name(0))"; git log -1 --format='commit %H' 2>/dev/null; } > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"

echo "== 1. tests that need CUDA"
timeout 200 "$PYTHON" -m pytest -q -p no:cacheprovider -n 4 -rs --junitxml "$OUT/tests.xml" \
    tests/kernels tests/test_no_host_sync.py tests/training/test_devices.py tests/ops 2>&1 | tee "$OUT/tests.txt" \
    | tail -25 || status=1

echo "== 2. a run on the GPU, evaluated on the CPU"
run="$(mktemp -d)"
{ timeout 120 "$PYTHON" -m cogdsl train specs/ntm_copy.yaml --device cuda --steps 300 --out "$run/copy" \
      --no-progress && timeout 60 "$PYTHON" -m cogdsl eval specs/ntm_copy.yaml "$run/copy" --device cpu \
      --sequences 100; } 2>&1 | tee "$OUT/run.txt" | tail -8 || status=1

echo "== 3. cogdsl bench"
timeout 180 "$PYTHON" -m cogdsl bench --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.txt" | tail -40 || status=1

echo "== 4. resource usage and kernels per step"
COGDSL_COMPILE_CHECK=1 timeout 120 "$PYTHON" -m pytest -q -p no:cacheprovider tests/kernels/test_compile_for_gpu.py -k spill 2>&1 \
    | tee "$OUT/spills.txt" | tail -5
timeout 90 "$PYTHON" -m cogdsl bench --launches specs/ntm_copy.yaml specs/dnc_repeat_copy.cog --compile 2>&1 \
    | tee "$OUT/launches.txt" | tail -5 || status=1

echo "== 5. CUDA graph replay and bit-identical runs"
timeout 60 "$PYTHON" tests/gpu/replay.py 2>&1 | tee "$OUT/replay.txt" | tail -8 || status=1

echo "== 6. a sweep on the GPU, two trials sharing it"
if "$PYTHON" -c "import ray.tune" 2> /dev/null; then
    { timeout 300 "$PYTHON" -m cogdsl sweep specs/ntm_copy.yaml --set train.steps=200 \
          --set train.optimizer.lr=1e-3,3e-4 --seeds 2 --gpus-per-trial 0.5 --sequences 100 --no-tensorboard \
          --out "$run/sweep" \
      && timeout 60 "$PYTHON" -m cogdsl table "$run/sweep" --markdown "$OUT/sweep_table.md" \
      && "$PYTHON" tests/gpu/sweep_check.py "$run/sweep" "$OUT/sweep_table.md"; } 2>&1 | tee "$OUT/sweep.txt" \
      | tail -12 || status=1
else
    echo "skipped: ray[tune] is not installed on this machine" | tee "$OUT/sweep.txt"
fi
exit $status

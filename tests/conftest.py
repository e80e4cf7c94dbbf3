"""Session-wide test setup: Triton's interpreter on a machine without a GPU, before anything imports Triton.

``triton.language`` is built when Triton is first imported, and the interpreter only runs kernels correctly
in a process where ``TRITON_INTERPRET=1`` was set before that: a test module that imports ``torch._dynamo``
or ``torch._inductor`` (both import Triton) ahead of tests/kernels/conftest.py would otherwise leave the
kernel tests of that worker calling compiled-mode ``tl`` functions ("Cannot call @triton.jit'd outside of
the scope of a kernel"). So it is set here, where pytest looks first. The ahead-of-time compile checks run
in a child process without it (tests/kernels/compile_check.py).
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    _share = max(1, _cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    torch.set_num_threads(_share)
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))

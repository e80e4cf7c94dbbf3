"""``cogdsl bench --launches`` on every path, with the Triton kernels on (the interpreter here).

The compiled paths cost two Inductor compilations (about a minute and a half on 2 cores): they run under
``make compile-check`` (COGDSL_COMPILE_CHECK=1), not in CI.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cogdsl.bench.launches import launches

SPEC = Path(__file__).resolve().parents[2] / "specs" / "ntm_copy.yaml"


def test_fewer_kernels_per_step_on_the_triton_path() -> None:
    """The Triton kernels launch fewer kernels per NTM step than eager PyTorch, forward and forward+backward."""
    (row,) = launches([SPEC], batch=2)
    (eager_forward, eager_both), (forward, both) = row.counts["eager"], row.counts["triton"]
    assert 0 < forward < eager_forward and forward < both < eager_both, row.counts
    assert "compiled" not in row.counts


@pytest.mark.skipif(not os.environ.get("COGDSL_COMPILE_CHECK"), reason="make compile-check runs it")
def test_fewer_kernels_per_step_on_the_compiled_paths() -> None:
    """The compiled step launches fewer kernels than eager PyTorch on either backend, and on the Triton kernels
    no more than the eager Triton step."""
    (row,) = launches([SPEC], batch=2, compiled=True)
    eager = row.counts["eager"]
    for path in ("compiled", "compiled-triton"):
        forward, both = row.counts[path]
        assert 0 < forward < eager[0] and forward < both < eager[1], (path, row.counts)
    assert row.counts["compiled-triton"][1] <= row.counts["triton"][1]

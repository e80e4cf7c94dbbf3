"""Run the Triton kernels under test: on CUDA when there is a GPU, else on Triton's CPU interpreter.

``TRITON_INTERPRET`` must be set before a kernel module is imported (``triton.jit`` reads it when
it decorates a kernel), so it is set here, when pytest imports this file during collection. The
whole directory is skipped when Triton is not installed.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

pytest.importorskip("triton")

from tests.kernels.helpers import ERRORS  # after TRITON_INTERPRET is set


@pytest.fixture
def device() -> str:
    """Where the kernels run: "cuda" when a GPU is available, else "cpu" (Triton's interpreter)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def _no_env_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """A COGDSL_BACKEND in the caller's environment must not change which backend a test runs."""
    monkeypatch.delenv("COGDSL_BACKEND", raising=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """With -v: the worst error each kernel test file saw, per dtype, against the reference."""
    if config.option.verbose <= 0 or not ERRORS:
        return
    worst: dict[tuple[str, str, str], tuple[float, float, str]] = {}
    for record in ERRORS:
        who = "reference" if record.label.startswith("CALIBRATION") else "kernel"
        key = (record.file, record.dtype, who)
        if key not in worst or record.used > worst[key][0]:
            worst[key] = (record.used, record.max_abs, record.label)
    terminalreporter.section("kernel errors against the reference (worst fraction of the tolerance used)")
    for (file, dtype, who), (used, max_abs, label) in sorted(worst.items()):
        terminalreporter.write_line(
            f"{file} {dtype} {who}: {used:.3g} of tolerance, max |error| {max_abs:.3g} ({label})"
        )

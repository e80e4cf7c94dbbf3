"""What the sweep tests share: a tiny NTM spec that trains in two steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny import tiny_ntm

TINY = tiny_ntm(train={"batch": 2, "steps": 2, "eval_every": 2, "eval_size": 4})


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """The tiny spec, as tmp_path/tiny.yaml."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path

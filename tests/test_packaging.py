"""Every sub-package of cogdsl is installed: pyproject.toml lists it (setuptools does not find them itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11 on

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject() -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(settings["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "cogdsl").rglob("__init__.py")}
    assert found - listed == set(), f"add these to [tool.setuptools] packages in pyproject.toml: {found - listed}"
    assert settings["package-dir"]["cogdsl.kernels"] == "kernels" and "cogdsl.kernels" in listed

"""The driver's cogdsl, shipped to a Ray cluster's workers so that every trial runs the code the sweep started with.

On a cluster (``--address``) the trials run on other machines, each with the cogdsl installed there: an older
release, or a checkout without the block kind added on the laptop the sweep was started from. Shipped, the
workers run the driver's own code instead, uncommitted changes and all, and need only cogdsl's dependencies
(torch, numpy, ...). The copy is the Ray job's ``runtime_env`` ``working_dir``: Ray zips it once, keeps it in the
cluster's object store under a hash of its content, starts every worker of the sweep in its node's copy of it and
puts that first on the worker's path. (A ``py_modules`` entry would not do: without a ``working_dir`` Ray adds the
driver's current folder to every worker's path, ahead of it, so a sweep started from the top of a checkout on a
shared file system would run that live checkout, edits made during the sweep included. The trials' folders and
specs are absolute paths, so the workers' current folder is free to be the copy.)

The copy holds ``_shipped.json``, the driver's :func:`~cogdsl.sweep.provenance.code_version`; a worker running the
copy records that commit (where the copy itself is no git checkout) with ``"shipped": true``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import cogdsl
from cogdsl.sweep.provenance import SHIPPED_FILE, code_version

#: cogdsl's sub-packages that lie outside its folder in a checkout (pyproject's ``package-dir``), and their place
#: inside the installed package.
OUTSIDE = {"cogdsl.kernels": "kernels"}

_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")


def stage_package(folder: Path) -> Path:
    """Copy the cogdsl this process runs into ``folder/cogdsl``, with the sub-packages a checkout keeps outside it
    (:data:`OUTSIDE`) in their installed places and :data:`~cogdsl.sweep.provenance.SHIPPED_FILE` recording the
    driver's code; the copy's folder."""
    source = Path(cogdsl.__file__).resolve().parent
    staged = folder / "cogdsl"
    shutil.copytree(source, staged, ignore=_SKIP)
    for name, place in OUTSIDE.items():
        found = importlib.util.find_spec(name)
        locations = list(found.submodule_search_locations or []) if found else []
        if locations and not (staged / place).exists():
            shutil.copytree(Path(locations[0]).resolve(), staged / place, ignore=_SKIP)
    (staged / SHIPPED_FILE).write_text(json.dumps(code_version()) + "\n")
    return staged


def runtime_env(staged: Path) -> dict[str, Any]:
    """The Ray ``runtime_env`` that starts every worker in the folder of the staged copy (:func:`stage_package`),
    with that folder first on its path."""
    return {"working_dir": str(staged.parent)}

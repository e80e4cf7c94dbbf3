"""What every task that reads data files shares: where its files are.

A data-file task names its files in its ``train``, ``valid`` and ``test`` parameters, as the spec
writes them: ``~`` and ``$VARIABLES`` are expanded and a relative path is read from the folder of
the spec that names the task (:meth:`FileParams.locate`), so one spec finds its data from any
working folder, and ``train="$DATA/en-10k/"`` follows the data from a laptop to a cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

ParamValue = int | float | bool | str


def resolve_path(text: str, folder: Path | None) -> Path:
    """A path from a spec: ``~`` and ``$VARIABLES`` expanded, relative paths from ``folder``."""
    path = Path(os.path.expandvars(os.path.expanduser(text)))
    return path if path.is_absolute() or folder is None else folder / path


class FileParams:
    """A mixin for a :class:`~cogdsl.tasks.base.Task` whose parameters in :attr:`file_params` are paths."""

    file_params: ClassVar[tuple[str, ...]] = ("train", "valid", "test")
    folder: Path | None = None
    config: dict[str, Any]

    def locate(self, folder: Path) -> None:
        """Read relative paths from ``folder``, the spec's."""
        self.folder = folder

    def has_split(self, which: str) -> bool:
        """Whether the task has data for split ``which``: a test split only where a test file is given (train
        and valid always: without a validation file, part of the training file is held out)."""
        return which != "test" or bool(self.config.get("test"))

    def path(self, which: str) -> Path:
        """The file (or folder) that parameter ``which`` names."""
        return resolve_path(str(self.config[which]), self.folder)

    def shown_params(self) -> dict[str, ParamValue]:
        """The parameters with every path given made absolute: the run folder's spec.yaml and a checkpoint
        record these, so they name the same files from anywhere."""
        shown = dict(self.config)
        for which in self.file_params:
            if shown[which]:
                shown[which] = str(self.path(which).resolve())
        return shown

"""TensorBoard event files in the run folder, beside ``log.csv`` and the PNGs.

    tensorboard --logdir runs/          # every run folder is one run in TensorBoard

What a run writes (tags): ``train/loss``, ``train/<errors>`` (the task's errors, e.g.
``train/bit_errors`` or ``train/error_rate``), ``train/lr``, ``train/<items>_per_sec``; at
each evaluation ``valid/loss``, ``valid/<errors>``, ``valid/perfect`` and the task's own
metrics (``valid/task_1_accuracy`` ...); and at each evaluation an image of what the model did on
one evaluation sequence, ``valid/weightings`` (head weightings over time, as ``cogdsl eval --plot``
draws them; for models with such weightings). A resumed run drops the events a stopped run wrote
after its checkpoint (TensorBoard's ``purge_step``), as ``log.csv`` drops its rows.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


class Tracker:
    """A TensorBoard ``SummaryWriter`` on ``out_dir`` (or nothing at all when ``enabled`` is false)."""

    def __init__(self, out_dir: Path, *, enabled: bool = True, purge_step: int | None = None) -> None:
        self.writer: Any = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # tensorboard is a dependency; a trimmed environment may lack it
            print(f"warning: no TensorBoard event files ({err}); pip install tensorboard", file=sys.stderr)
            return
        self.writer = SummaryWriter(log_dir=str(out_dir), purge_step=purge_step)

    def scalars(self, step: int, prefix: str, values: Mapping[str, float | None]) -> None:
        """``prefix/name`` = value for each finite value."""
        if self.writer is None:
            return
        for name, value in values.items():
            if value is not None:
                self.writer.add_scalar(f"{prefix}/{name}", float(value), step)

    def picture(self, step: int, tag: str, draw: Callable[[Path], object]) -> None:
        """An image drawn by ``draw`` (which writes a PNG at the path it is given). A picture that cannot be
        drawn is skipped with a warning."""
        if self.writer is None:
            return
        import numpy as np
        from PIL import Image

        try:
            with tempfile.TemporaryDirectory(prefix="cogdsl-picture-") as folder:
                path = Path(folder) / "picture.png"
                draw(path)
                with Image.open(path) as picture:
                    image = np.asarray(picture.convert("RGB"))
        except Exception as err:  # a picture is a convenience: it never stops a run
            print(f"warning: no {tag} picture at step {step}: {err}", file=sys.stderr)
            return
        self.writer.add_image(tag, image, step, dataformats="HWC")

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

"""Step 6 of the GPU check: read the sweep tests/gpu/check.sh ran (2 learning rates x 2 seeds, half a GPU per
trial) and its table, and fail unless every trial trained on the GPU Ray gave it and the table counts GPU time.

    python tests/gpu/sweep_check.py SWEEP_DIR TABLE_MD
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def problems(sweep: Path, table: Path) -> list[str]:
    """What is wrong with the sweep in ``sweep`` and its Markdown ``table`` (empty: nothing)."""
    found: list[str] = []
    markers = sorted(sweep.glob("*/trial.json"))
    if len(markers) != 4:
        found.append(f"{len(markers)} trial.json files, not 4")
    for marker_path in markers:
        marker = json.loads(marker_path.read_text())
        name = marker_path.parent.name
        if marker.get("status") != "done":
            found.append(f"{name}: status {marker.get('status')!r}: {marker.get('error', '')}")
        if marker.get("device") != "cuda" or marker.get("gpus") != 0.5:
            found.append(f"{name}: device {marker.get('device')!r}, gpus {marker.get('gpus')!r}, not cuda and 0.5")
        if not marker.get("cuda_visible_devices"):
            found.append(f"{name}: Ray set no CUDA_VISIBLE_DEVICES")
    text = table.read_text() if table.is_file() else ""
    if "GPU s/trial" not in text:
        found.append(f"{table}: no 'GPU s/trial' column")
    return found


if __name__ == "__main__":
    wrong = problems(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(wrong) if wrong else "sweep on the GPU: 4 trials done on cuda, half a GPU each; table in GPU s")
    sys.exit(1 if wrong else 0)

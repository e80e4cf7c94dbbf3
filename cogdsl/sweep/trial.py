"""One trial of a sweep: an ordinary training run of the spec into its own run folder, then its score.

The run is :func:`cogdsl.train` with the trial's spec (its settings applied) and seed, exactly what ``cogdsl
train SPEC --set ... --seed S --out FOLDER`` does, so ``cogdsl eval`` and ``cogdsl trace`` work on the folder
(``cogdsl eval FOLDER/spec.yaml FOLDER``). Beside the run's own files the folder holds::

    trial.json     the trial's marker: its status (done, time, failed, interrupted), its settings and seed,
                   CPU and wall seconds (a resumed trial's include the training its checkpoint kept from
                   earlier attempts, ``earlier_cpu_seconds``), device, the code
                   (versions, git commit), the checkpoint scored and its metrics, or the error
    output.txt     what the run printed (its evaluations, warnings): a resumed trial's attempts one after
                   the other. While an attempt runs its output goes, line by line, to ``ID.output.part``
                   beside the trial's folder (the run folder must be empty when training starts), and moves
                   into output.txt when the attempt ends; an attempt that was killed leaves its lines there,
                   and the next attempt adds to them

``trial.json`` is written last, atomically: a trial whose status is ``done`` or ``time`` (stopped by
``--max-minutes``) is finished, and ``cogdsl sweep --resume`` does not run it again. A trial that was
killed part way (no marker, or ``interrupted``) continues from its newest checkpoint; one that failed
starts again, unless it failed after its training ended (in the scoring): then it is only scored again.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import shutil
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from cogdsl.sweep.plan import Score, Trial
from cogdsl.sweep.provenance import code_version

TRIAL_FILE = "trial.json"
OUTPUT_FILE = "output.txt"
PARTIAL_SUFFIX = ".output.part"
FINISHED = ("done", "time")
"""The statuses of a trial that a resumed sweep does not run again."""


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The trial's ``trial.json``, or None when there is none or it cannot be read."""
    try:
        data = json.loads((folder / TRIAL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_finished(folder: Path) -> bool:
    """Whether the trial in ``folder`` finished (done, or stopped at its time limit)."""
    marker = read_marker(folder)
    return marker is not None and marker.get("status") in FINISHED


def write_marker(folder: Path, marker: dict[str, Any]) -> None:
    from cogdsl.training.checkpoints import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / TRIAL_FILE, json.dumps(marker, indent=2, default=str) + "\n")


@functools.cache
def loaded_code() -> dict[str, Any]:
    """Load every module a trial can run (:func:`cogdsl.training.preload.load_all`, and the scoring), once per
    worker process, and say which code that is (:func:`~cogdsl.sweep.provenance.code_version`, read as it was
    loaded).

    A worker runs trial after trial (Ray reuses it) with the modules it has loaded. Loaded as each was first
    needed, a module first needed hours into a sweep (the scoring, after the first trial's training) would be
    read from a checkout edited or pulled since, beside modules of the old code, and fail on a name that moved
    (an ImportError after the whole training). Loaded together at the worker's first trial, the worker runs
    one version of the code to its end, and the trials record that version, not the checkout's newer one."""
    from cogdsl.training import preload

    preload.load_all()
    importlib.import_module("cogdsl.sweep.score")
    return code_version()


def ray_node() -> str | None:
    """The id of the Ray node this process runs on, or None outside a Ray worker."""
    ray = sys.modules.get("ray")  # a Ray worker has imported it; anything else need not
    try:
        return ray.get_runtime_context().get_node_id() if ray is not None and ray.is_initialized() else None
    except Exception:  # a Ray that cannot say: the host name is recorded anyway
        return None


def run_trial(config: dict[str, Any]) -> dict[str, Any]:
    """Run the trial ``config`` describes (:func:`trial_config`) and return its marker; never raises for a
    failure of the trial itself: the error goes into the marker (status ``failed``)."""
    trial = Trial.from_json(config["trial"])
    folder = Path(config["folder"])
    score = Score(**{**config["score"], "lengths": tuple(config["score"]["lengths"])})
    marker: dict[str, Any] = {
        "id": trial.id, "spec": trial.spec, "model": trial.model, "settings": trial.settings, "seed": trial.seed,
        "device": config["device"], "gpus": config["gpus"], "threads": config["threads"],
        "max_minutes": config["max_minutes"], "host": socket.gethostname(), "node": ray_node(), "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),  # the GPUs Ray gave the trial
        "code": loaded_code(),  # cogdsl's and torch's versions, the commit of the code this worker loaded
    }
    partial = partial_output(folder)
    output = _open_partial(partial)
    started, cpu = time.time(), time.process_time()
    earlier_cpu = earlier_wall = 0.0  # what the checkpoint a resumed attempt starts from says earlier ones took
    try:
        check_gpu(config["device"])
        resume, force = _prepare(folder)
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            result, keeps_best = _train(trial, folder, config, resume=resume, force=force)
            marker.update(step=result.step, steps=result.config.steps, stopped=result.stopped,
                          resumed=resume)
            if resume and result.earlier_cpu_seconds is not None:  # None: a checkpoint older than the count
                earlier_cpu, earlier_wall = result.earlier_cpu_seconds, result.earlier_seconds
                marker.update(earlier_cpu_seconds=round(earlier_cpu, 3), earlier_seconds=round(earlier_wall, 3))
            if result.stopped == "interrupted":
                marker["status"] = "interrupted"
            else:
                from cogdsl.sweep.score import measure

                marker["scored"] = measure(folder, score, keeps_best, config["device"])
                marker["status"] = "time" if result.stopped == "time" else "done"
    except Exception as err:  # the trial failed: said in its marker and the sweep's summary; the others go on
        marker.update(status="failed", error=error_text(err), traceback=traceback.format_exc())
    finally:
        marker["cpu_seconds"] = round(earlier_cpu + time.process_time() - cpu, 3)
        marker["wall_seconds"] = round(earlier_wall + time.time() - started, 3)
    folder.mkdir(parents=True, exist_ok=True)
    _keep_output(output, partial, folder / OUTPUT_FILE)
    write_marker(folder, marker)
    return marker


def partial_output(folder: Path) -> Path:
    """Where the attempt running in ``folder`` writes what it prints: ``SWEEP/ID.output.part``."""
    return folder.with_name(folder.name + PARTIAL_SUFFIX)


def _open_partial(path: Path) -> io.TextIOBase:
    """The running attempt's output file, line-buffered, after what a killed attempt left in it (said with a
    line); a string buffer where the sweep folder cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        killed = path.exists() and path.stat().st_size > 0
        handle = open(path, "a", encoding="utf-8", buffering=1)  # closed by _keep_output
    except OSError:
        return io.StringIO()
    if killed:
        handle.write(f"-- the attempt above was killed before it ended; {time.strftime('%Y-%m-%d %H:%M:%S')} "
                     "another begins --\n")
    return handle


def _keep_output(output: io.TextIOBase, partial: Path, kept: Path) -> None:
    """Close the attempt's ``output``, add what it holds (the partial file's lines) to the trial's ``kept``
    output.txt and remove the partial file."""
    if isinstance(output, io.StringIO):
        text = output.getvalue()
    else:
        output.close()
        try:
            text = partial.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
    with contextlib.suppress(OSError):
        with open(kept, "a", encoding="utf-8") as handle:
            handle.write(text)
        partial.unlink(missing_ok=True)


def check_gpu(device: str) -> None:
    """A trial Ray gave a GPU share to trains on ``cuda``: say which GPU and which machine when torch there sees
    none, and what to do.

    Raises:
        UsageError: ``device`` is cuda and torch sees no CUDA GPU on this worker."""
    import torch

    from cogdsl.errors import UsageError

    if device != "cuda" or torch.cuda.is_available():
        return
    build = "is a CPU build" if torch.version.cuda is None else "sees no CUDA GPU"
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    raise UsageError(f"Ray gave this trial GPU {given if given is not None else '(none named)'} on "
                     f"{socket.gethostname()}, but torch there {build}: install a CUDA build of torch on every "
                     "machine of the cluster, or pass --gpus-per-trial 0 to train on CPUs")


def _prepare(folder: Path) -> tuple[bool, bool]:
    """Whether the trial continues the run in ``folder`` (resume) or replaces it (force). A run killed part
    way continues from its newest checkpoint, and so does one that failed after its training ended (in the
    scoring: it is scored again, not trained again); one that failed in training starts again; a marker and
    output of a run that never wrote a run file are the trial's own, and are cleared."""
    from cogdsl.training.checkpoints import list_checkpoints
    from cogdsl.training.run_folder import looks_like_run

    if not folder.is_dir():
        return False, False
    marker = read_marker(folder)
    if list_checkpoints(folder) and (marker is None or marker.get("status") == "interrupted" or _trained(marker)):
        return True, False
    for name in (TRIAL_FILE, OUTPUT_FILE):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    if looks_like_run(folder):
        return False, True
    if not any(folder.iterdir()):
        return False, False
    shutil.rmtree(folder)  # only what an earlier try of this trial left (a partial folder without run files)
    return False, False


def _trained(marker: dict[str, Any]) -> bool:
    """Whether a failed trial's marker says its training ran to its last step (it failed in the scoring)."""
    step, steps = marker.get("step"), marker.get("steps")
    return (marker.get("status") == "failed" and marker.get("stopped") in ("done", "already done")
            and isinstance(step, int) and step == steps)


def _train(trial: Trial, folder: Path, config: dict[str, Any], *, resume: bool, force: bool) -> tuple[Any, bool]:
    """The training run, as ``cogdsl train`` makes it; and whether the spec asks to keep its best weights."""
    from cogdsl.compiler.pipeline import parse_text, validate_spec
    from cogdsl.training.loop import asks_for_best, config_from_spec, train

    spec = parse_text(trial.spec_yaml, trial.spec_name, "yaml")
    validate_spec(spec)
    settings = config_from_spec(spec, trial.spec_name).with_overrides(seed=trial.seed, threads=config["threads"])
    result = train(spec, settings, folder, resume=resume, force=force, progress=False,
                   max_minutes=config["max_minutes"], device=config["device"], tensorboard=config["tensorboard"])
    return result, asks_for_best(spec)


def error_text(err: BaseException) -> str:
    """A failed trial's error in words: a spec error as ``cogdsl`` prints it, anything else as its type and
    message."""
    from cogdsl.errors import CogdslError, SpecError

    if isinstance(err, SpecError):
        return err.render()
    if isinstance(err, CogdslError):
        return str(err)
    return f"{type(err).__name__}: {str(err).strip() or 'no message'}"


def trial_config(trial: Trial, folder: Path, score: Score, *, max_minutes: float | None, device: str, gpus: float,
                 threads: int, tensorboard: bool = True) -> dict[str, Any]:
    """Everything a worker needs to run ``trial`` (plain data: it travels to the worker as Ray Tune's config)."""
    return {"trial": trial.absolute().to_json(), "folder": str(folder.resolve()), "max_minutes": max_minutes,
            "score": {**score.__dict__, "lengths": list(score.lengths)}, "device": device, "gpus": gpus,
            "threads": threads, "tensorboard": tensorboard}


def tune_trainable(config: dict[str, Any]) -> dict[str, Any]:
    """The function Ray Tune runs for each trial: :func:`run_trial` on ``config["trial"]``; its marker is the
    trial's result."""
    marker = run_trial(config["trial"])
    return {"status": marker["status"], "id": marker["id"]}

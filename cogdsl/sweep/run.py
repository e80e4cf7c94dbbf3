"""The sweep's driver: its trials on Ray Tune, one run folder each under one sweep folder.

    SWEEP/
      sweep.json      the plan and its trials (ids, specs, settings, seeds): what cogdsl table reads
      summary.json    each trial's status after the last sweep command, and the errors of those that failed
      <trial id>/     an ordinary run folder, and its trial.json (cogdsl.sweep.trial)
      .tune/          Ray Tune's own records

Ray runs the trials: on this machine by default (a Ray instance started for the sweep, with the cores and GPUs
it finds), or on a Ray cluster with ``--address`` (``ray start --head`` on one machine, ``ray start --address
HEAD:6379`` on the others; the sweep folder must then be on a file system every machine sees, and the driver ships
its own cogdsl to the workers, :mod:`cogdsl.sweep.ship`). Each trial asks
Ray for ``cpus_per_trial`` cores and, where the cluster has GPUs, ``gpus_per_trial`` GPUs (1 by default; 0.25
lets four small models share one), so Ray runs as many side by side as the resources allow (``--jobs`` caps it).

Resuming is the sweep's own, not Ray Tune's ``Tuner.restore``: a trial whose run folder holds a finished
marker (``trial.json`` with status done or time) is not given to Ray at all, and every other trial runs
(continuing from its newest checkpoint if it has one). The marker is written by the trial, last and atomically,
in the folder that holds its results, so it is right however the sweep stopped (Ctrl-C, a killed driver, a
lost machine), on another Ray cluster or Ray version, and after the plan grew new trials; Tune's experiment
state is written by the driver on its own schedule and may be behind the run folders when the driver is killed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cogdsl.errors import UsageError
from cogdsl.sweep.plan import Plan, Trial, check_unique
from cogdsl.sweep.trial import FINISHED, read_marker, trial_config, write_marker

SWEEP_FILE = "sweep.json"
SUMMARY_FILE = "summary.json"
TUNE_DIR = ".tune"
INSTALL_HINT = "pip install 'cogdsl[sweep]'"


def import_tune() -> Any:
    """Ray Tune, imported; quiet, and writing nothing of its own into the trials' folders.

    Raises:
        UsageError: Ray Tune is not installed (the message says how to install it)."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the run folders have the logs
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", "16")
    try:
        import ray  # noqa: F401
        from ray import tune
    except ImportError as err:
        raise UsageError(f"cogdsl sweep runs its trials on Ray Tune, which is not installed ({err}); install it "
                         f"with: {INSTALL_HINT}") from None
    return tune


def check_sweep_dir(out: Path, *, resume: bool, force: bool) -> None:
    """What may be done with the sweep folder, touching nothing.

    Raises:
        UsageError: it exists without --resume or --force, --resume or --force on a folder that is no sweep's,
            both given."""
    if resume and force:
        raise UsageError("pass either --resume or --force, not both")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder; choose another --out")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if resume:
        if not (out / SWEEP_FILE).is_file():
            raise UsageError(f"{out} is not a sweep folder (it has no {SWEEP_FILE}): nothing to resume there; choose "
                             "another --out")
        return
    if not force:
        raise UsageError(f"{out} exists; pass --resume to continue the sweep (its finished trials are not run "
                         "again) or --force to replace it")
    if not (out / SWEEP_FILE).is_file():
        raise UsageError(f"{out} is not a sweep folder (it has no {SWEEP_FILE}); --force only replaces sweep "
                         "folders: choose another --out")
    resolved = out.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents or resolved == Path.home():
        raise UsageError(f"{out} is the current folder, one of its parents or the home folder; --force will not "
                         "delete it")


def run_sweep(plan: Plan, trials: list[Trial], out: Path, *, resume: bool = False, force: bool = False,
              address: str | None = None, jobs: int | None = None, num_cpus: int | None = None,
              ship_code: bool | None = None, echo: Callable[[str], None] | None = None) -> int:
    """Run the trials of ``plan`` that have not finished into ``out``; 0 when every trial finished, 1 when
    some failed (or did not run), 130 when the sweep was interrupted. The summary is printed either way.

    ``num_cpus``: the cores a local Ray instance may use (default: all). ``ship_code``: whether the workers run
    this process's cogdsl (:mod:`cogdsl.sweep.ship`) rather than their own; default: on a cluster (``address``
    given), not on this machine. Without ``address``, ``RAY_ADDRESS`` is the cluster where set (as in a Ray
    job), and otherwise a new Ray instance is started, even where one already runs on this machine. A Ray instance
    this process has already started (``ray.init``) is used as it is, with the code its workers have.

    Raises:
        UsageError: the folder (:func:`check_sweep_dir`), no Ray, GPUs asked for where the cluster has none."""
    say = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    address = address or os.environ.get("RAY_ADDRESS") or None  # a Ray job's driver is told its cluster so
    check_sweep_dir(out, resume=resume, force=force)
    check_unique(trials)
    if force and out.is_dir():
        check_inputs_outside(plan, out)
        todo = list(trials)
    else:
        todo = [t for t in trials if (read_marker(out / t.id) or {}).get("status") not in FINISHED]
        check_trial_folders(out, todo)
    if len(todo) < len(trials):
        say(f"{len(trials) - len(todo)} of {len(trials)} trials finished before; not run again")

    def begin() -> None:
        """The sweep's first writes, made once the cluster is known to run its trials: the old sweep removed
        (--force), the folder and sweep.json written."""
        if force and out.is_dir():
            _empty(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"cannot create the sweep folder {out}: {err.strerror or err}") from None
        _write_json(out / SWEEP_FILE, {"plan": plan.to_json(), "trials": [t.to_json() for t in trials],
                                       "updated": time.strftime("%Y-%m-%d %H:%M:%S")})

    interrupted = False
    if todo:
        tune = import_tune()
        interrupted = _tune(tune, plan, todo, out, address=address, jobs=jobs, num_cpus=num_cpus,
                            ship_code=address is not None if ship_code is None else ship_code, say=say, begin=begin)
    else:
        begin()
    return summarize(trials, out, say, interrupted)


def check_inputs_outside(plan: Plan, out: Path) -> None:
    """``--force`` empties the sweep folder: refuse when the plan or a spec it reads is in it.

    Raises:
        UsageError: the first such file."""
    folder = out.resolve()
    for path in (plan.source, *plan.specs):
        if path and folder in Path(path).resolve().parents:
            raise UsageError(f"{path} is in the sweep folder {out}, which --force would empty; move it out first or "
                             "choose another --out")


def check_trial_folders(out: Path, trials: list[Trial]) -> None:
    """Each trial's run folder is a folder or not there yet.

    Raises:
        UsageError: something else is where a trial's folder goes."""
    for trial in trials:
        where = out / trial.id
        if where.exists() and not where.is_dir():
            raise UsageError(f"{where} is a file where trial {trial.id}'s run folder goes; move it away and run "
                             "the sweep again")


def _empty(folder: Path) -> None:
    """Remove what ``folder`` holds, keeping the folder (or the link to it) itself."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def rescore_sweep(plan: Plan, trials: list[Trial], out: Path, echo: Callable[[str], None] | None = None) -> int:
    """Score every finished trial of ``out`` again with ``plan``'s scoring, on this machine's CPU, without
    training (a plan that gained test lengths or a task that gained metrics); each marker's ``scored`` is
    replaced, with ``rescored`` saying when, and sweep.json takes the plan. 0 when every finished trial was
    scored, 1 when one could not be; trials that had not finished are left and said.

    Raises:
        UsageError: ``out`` has none of the plan's trials."""
    from cogdsl.compiler.pipeline import parse_text
    from cogdsl.sweep.score import measure
    from cogdsl.sweep.trial import error_text
    from cogdsl.training.loop import asks_for_best

    say = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    markers = {t.id: read_marker(out / t.id) for t in trials}
    finished = [t for t in trials if (markers[t.id] or {}).get("status") in FINISHED]
    if not finished:
        raise UsageError(f"--rescore: {out} has no finished trial of this plan to score")
    failed = 0
    for number, trial in enumerate(finished, 1):
        marker = dict(markers[trial.id] or {})
        try:
            keeps_best = asks_for_best(parse_text(trial.spec_yaml, trial.spec_name, "yaml"))
            marker["scored"] = measure(out / trial.id, plan.score, keeps_best, "cpu")
            marker["rescored"] = time.strftime("%Y-%m-%d %H:%M:%S")
            write_marker(out / trial.id, marker)
            say(f"[{number}/{len(finished)}] {trial.id}: scored again")
        except Exception as err:  # one trial's folder is broken: said, and the others are scored
            failed += 1
            say(f"[{number}/{len(finished)}] {trial.id}: could not be scored: {error_text(err)}")
    left = len(trials) - len(finished)
    if left:
        say(f"{left} trial{'s' if left != 1 else ''} had not finished and {'were' if left != 1 else 'was'} left "
            "(run them with --resume)")
    _write_json(out / SWEEP_FILE, {"plan": plan.to_json(), "trials": [t.to_json() for t in trials],
                                   "updated": time.strftime("%Y-%m-%d %H:%M:%S")})
    print(f"sweep {out}: {len(finished) - failed} of {len(finished)} finished trials scored again\n"
          f"  table: cogdsl table {out}")
    return 1 if failed else 0


def _tune(tune: Any, plan: Plan, todo: list[Trial], out: Path, *, address: str | None, jobs: int | None,
          num_cpus: int | None, ship_code: bool, say: Callable[[str], None],
          begin: Callable[[], None] = lambda: None) -> bool:
    """Run ``todo`` on Ray Tune, calling ``begin`` once the cluster has what the trials ask for; whether the
    sweep was interrupted."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        _start_ray(address, num_cpus, ship_code, say)
    try:
        resources = ray.cluster_resources()
        cpus, gpus, device = trial_resources(plan, resources)
        threads = max(1, int(cpus))
        say(f"{len(todo)} trials, each on {cpus:g} CPU{'s' if cpus != 1 else ''}"
            + (f" and {gpus:g} GPU{'s' if gpus > 1 else ''}" if gpus else "")
            + f"; the cluster has {resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs")
        if address is not None or len(_working_nodes()) > 1:
            check_nodes(out, say)
        begin()
        configs = {t.id: trial_config(t, out / t.id, plan.score, max_minutes=plan.max_minutes, device=device,
                                      gpus=gpus, threads=threads, tensorboard=plan.tensorboard) for t in todo}
        from cogdsl.sweep.trial import tune_trainable

        trainable = tune.with_resources(tune_trainable, {"cpu": cpus, "gpu": gpus})
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search([configs[t.id] for t in todo])},
            # reuse_actors: a worker process runs trial after trial, so torch is imported once per worker, not
            # once per trial (seconds each on a small machine); every trial sets its own seeds and threads.
            tune_config=tune.TuneConfig(max_concurrent_trials=jobs, trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name, reuse_actors=True),
            run_config=tune.RunConfig(name=time.strftime("run-%Y%m%d-%H%M%S-") + str(os.getpid()),
                                      storage_path=str((out / TUNE_DIR).resolve()), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=0),
                                      callbacks=[_progress(tune, out, len(todo), say)]),
        )
        try:
            with term_as_interrupt():
                grid = tuner.fit()
        except KeyboardInterrupt:
            return True
        for result in grid:  # a trial whose worker died wrote no marker: Ray's error is its record
            trial_id = (result.config or {}).get("trial", {}).get("trial", {}).get("id")
            if result.error is not None and trial_id and read_marker(out / trial_id) is None:
                marker = {"id": trial_id, "status": "failed", "error": _ray_error(result.error)}
                write_marker(out / trial_id, marker)
        # Tune returns early, without an error, only when it was stopped (Ctrl-C): a trial with no marker now was
        # neither finished nor failed.
        return any(read_marker(out / t.id) is None for t in todo)
    finally:
        if started_here:
            ray.shutdown()


def _start_ray(address: str | None, num_cpus: int | None, ship_code: bool, say: Callable[[str], None]) -> None:
    """Start a local Ray instance, or connect to the cluster at ``address``; with ``ship_code``, this process's
    cogdsl goes with the job to every worker (:mod:`cogdsl.sweep.ship`).

    Raises:
        UsageError: Ray cannot start or reach the cluster (its first line of error)."""
    import tempfile

    import ray

    from cogdsl.sweep.ship import runtime_env, stage_package

    begun = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cogdsl-ship-") as staging:  # Ray uploads the copy in ray.init
        env = runtime_env(stage_package(Path(staging))) if ship_code else None
        try:
            # "local": a new instance, never one that happens to run on this machine (Ray's default)
            ray.init(address=address or "local", num_cpus=num_cpus if address is None else None,
                     include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                     configure_logging=True, runtime_env=env)
        except (ConnectionError, ValueError, RuntimeError) as err:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise UsageError(f"cannot start {where}: {str(err).strip().splitlines()[0]}") from None
    say(f"ray: {'connected to ' + address if address else 'started on this machine'} in "
        f"{time.perf_counter() - begun:.1f} s" + ("; the workers run this cogdsl, shipped" if ship_code else ""))


def _working_nodes() -> list[dict[str, Any]]:
    """The cluster's live nodes that can run a trial (a head started with ``--num-cpus 0`` runs none)."""
    import ray

    return [node for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0]


def check_nodes(out: Path, say: Callable[[str], None], timeout: float = 120.0) -> None:
    """Before anything is written, ask every node that can run a trial whether it runs cogdsl and sees the sweep
    folder: a file written there by this process is read back on each node. A cluster without a shared file
    system, or a machine without cogdsl, fails here in seconds instead of trial by trial. A node that runs another
    version of cogdsl than this process is said (where the code is not shipped).

    Raises:
        UsageError: a node cannot run cogdsl or does not see the sweep folder; the nodes are named."""
    import uuid

    from cogdsl.sweep.provenance import code_version

    created = [folder for folder in (out, *out.parents) if not folder.exists()]  # removed again, deepest first
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".probe-{uuid.uuid4().hex}"
        probe.write_text(probe.name)
    except OSError as err:
        raise UsageError(f"cannot write in the sweep folder {out}: {err.strerror or err}") from None
    try:
        answers = probe_nodes(str(probe.resolve()), probe.name, timeout)
    finally:
        probe.unlink(missing_ok=True)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
    mine = code_version()
    blind = []
    for node, answer in answers.items():
        if isinstance(answer, str):
            blind.append(f"{node}: {answer}")
        elif not answer["sees"]:
            blind.append(f"{node} ({answer['host']}) does not see {probe.parent.resolve()}")
        elif [answer["code"].get(key) for key in ("cogdsl", "commit")] != [mine.get(key) for key in ("cogdsl",
                                                                                                       "commit")]:
            say(f"note: {answer['host']} runs cogdsl {answer['code'].get('cogdsl')} at commit "
                f"{str(answer['code'].get('commit'))[:7]}, this process {mine.get('cogdsl')} at "
                f"{str(mine.get('commit'))[:7]}")
    if blind:
        raise UsageError("the sweep cannot run on this cluster: " + "; ".join(blind) + ". Every machine needs "
                         "cogdsl's dependencies and the sweep folder (--out) on a file system they all see")
    say(f"{len(answers)} node{'s' if len(answers) != 1 else ''} checked: each runs cogdsl and sees {out}")


def probe_nodes(path: str, expected: str, timeout: float) -> dict[str, dict[str, Any] | str]:
    """Run :func:`_probe` on every node that can run a trial: its answer, or why it gave none."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    remote = ray.remote(num_cpus=0, max_retries=0)(_probe)
    nodes = _working_nodes()
    addresses = [node["NodeManagerAddress"] for node in nodes]
    refs = {node_name(node, unique=addresses.count(node["NodeManagerAddress"]) == 1): remote.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(path, expected)
        for node in nodes}
    answers: dict[str, dict[str, Any] | str] = {}
    begun = time.monotonic()
    for name, ref in refs.items():
        try:
            answers[name] = ray.get(ref, timeout=max(1.0, timeout - (time.monotonic() - begun)))
        except ray.exceptions.GetTimeoutError:
            answers[name] = f"gave no answer in {timeout:g} s"
        except ray.exceptions.RayError as err:
            lines = str(err).strip().splitlines()
            answers[name] = f"cannot run cogdsl ({lines[-1] if lines else type(err).__name__})"
    return answers


def node_name(node: dict[str, Any], unique: bool) -> str:
    """"node 10.0.0.2", and the start of its Ray node id where its address is not ``unique`` (several nodes of
    one machine)."""
    return f"node {node['NodeManagerAddress']}" + ("" if unique else f" {str(node['NodeID'])[:8]}")


def _probe(path: str, expected: str) -> dict[str, Any]:
    """On a node: its host name, whether the file at ``path`` holds ``expected``, and its cogdsl's version."""
    import socket

    from cogdsl.sweep.provenance import code_version

    try:
        sees = Path(path).read_text() == expected
    except OSError:
        sees = False
    return {"host": socket.gethostname(), "sees": sees, "code": code_version()}


@contextlib.contextmanager
def term_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM (a cluster taking the machine back, ``timeout``, ``kill``) is delivered as
    SIGINT, so that it stops the sweep as Ctrl-C does (Tune stops its trials, the summary says how to resume)
    instead of the Ray driver's abort. Outside the main thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _as_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _as_interrupt(number: int, frame: Any) -> None:
    """SIGTERM handled as SIGINT is: by SIGINT's handler (Tune's, during a fit), or as KeyboardInterrupt where
    SIGINT has none, as in a process started in the background (``nohup ... &``), which ignores SIGINT."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def trial_resources(plan: Plan, cluster: dict[str, float]) -> tuple[float, float, str]:
    """What each trial asks Ray for, and where it trains: ``(cpus, gpus, device)``. On a cluster with GPUs a trial
    takes ``gpus_per_trial`` of one (default a whole GPU) and trains on ``cuda`` (Ray sets CUDA_VISIBLE_DEVICES
    to its share); on one without, the CPU.

    Raises:
        UsageError: GPUs asked for where the cluster has none, more CPUs per trial than the cluster has."""
    gpus_there = float(cluster.get("GPU", 0))
    gpus = plan.gpus_per_trial if plan.gpus_per_trial is not None else (1.0 if gpus_there else 0.0)
    if gpus > 0 and not gpus_there:
        raise UsageError(f"--gpus-per-trial {gpus:g}: the Ray cluster has no GPU; leave it out to train on CPUs")
    if gpus > gpus_there:
        raise UsageError(f"--gpus-per-trial {gpus:g}: the Ray cluster has {gpus_there:g} GPUs")
    cpus = plan.cpus_per_trial
    if cpus > float(cluster.get("CPU", 0)):
        raise UsageError(f"--cpus-per-trial {cpus:g}: the Ray cluster has {cluster.get('CPU', 0):g} CPUs")
    return cpus, gpus, "cuda" if gpus > 0 else "cpu"


def _trial_name(trial: Any) -> str:
    return str(trial.config["trial"]["trial"]["id"])


def _ray_error(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:500]}" if text else type(error).__name__


def _progress(tune: Any, out: Path, total: int, say: Callable[[str], None]) -> Any:
    """A Tune callback that prints a line as each trial ends: its status and where its folder is."""

    class Progress(tune.Callback):
        done = 0

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self._report(trial)

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self._report(trial)

        def _report(self, trial: Any) -> None:
            Progress.done += 1
            trial_id = _trial_name(trial)
            say(f"[{Progress.done}/{total}] {describe_marker(trial_id, read_marker(out / trial_id))}")

    return Progress()


def describe_marker(trial_id: str, marker: dict[str, Any] | None) -> str:
    """One line for a trial: its status, step, main metric and time, or its error's first line."""
    if marker is None:
        return f"{trial_id}: did not finish (no trial.json)"
    status = marker.get("status")
    if status == "failed":
        first = str(marker.get("error") or "").strip().splitlines()
        return f"{trial_id}: failed: {first[0] if first else 'no message'}"
    seconds = marker.get("wall_seconds")
    took = f" in {seconds:,.0f} s" if isinstance(seconds, (int, float)) else ""
    why = {"done": "done", "time": "stopped at --max-minutes", "interrupted": "interrupted"}.get(str(status), status)
    step = f", step {marker['step']}" if "step" in marker else ""
    return f"{trial_id}: {why}{step}{took}"


def summarize(trials: list[Trial], out: Path, say: Callable[[str], None], interrupted: bool = False) -> int:
    """Write summary.json and print the summary: counts, and each failed trial's error; the exit status."""
    markers = {t.id: read_marker(out / t.id) for t in trials}
    status = {i: (m or {}).get("status", "not finished") for i, m in markers.items()}
    counts = {s: list(status.values()).count(s) for s in dict.fromkeys(status.values())}
    failed = {i: markers[i] for i, s in status.items() if s == "failed"}
    words = ", ".join(f"{n} {s}" for s, n in counts.items())
    lines = [f"sweep {out}: {len(trials)} trials: {words}"]
    for trial_id, marker in failed.items():
        error = str((marker or {}).get("error") or "no message").strip()
        lines.append(f"  failed: {trial_id} ({out / trial_id / 'trial.json'}):")
        lines += [f"    {line}" for line in error.splitlines()[:12]]
    if any(s not in FINISHED for s in status.values()):
        lines.append("  continue with the same command and --resume (finished trials are not run again)")
    lines.append(f"  table: cogdsl table {out}")
    print("\n".join(lines))
    _write_json(out / SUMMARY_FILE, {"counts": counts, "trials": status,  # after the summary, which is said
                                     "errors": {i: (m or {}).get("error") for i, m in failed.items()}})
    if interrupted:
        return 130
    return 0 if all(s in FINISHED for s in status.values()) else 1


def _write_json(path: Path, data: Any) -> None:
    """Raises UsageError when ``path`` cannot be written (a folder in its place, a full disk)."""
    from cogdsl.training.checkpoints import atomic_write_text

    try:
        atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}") from None

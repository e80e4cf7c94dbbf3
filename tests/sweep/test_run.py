"""The sweep driver's decisions, here without Ray: what each trial asks the cluster for, which trials run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cogdsl.errors import UsageError
from cogdsl.sweep import run
from cogdsl.sweep.plan import Plan, Trial
from cogdsl.sweep.run import trial_resources
from cogdsl.sweep.trial import write_marker


def test_a_trial_takes_a_gpu_where_the_cluster_has_them_and_shares_one_when_asked() -> None:
    plan = Plan(specs=[])
    assert trial_resources(plan, {"CPU": 16.0, "GPU": 1.0}) == (1.0, 1.0, "cuda")
    assert trial_resources(plan, {"CPU": 2.0}) == (1.0, 0.0, "cpu")
    plan.gpus_per_trial, plan.cpus_per_trial = 0.25, 2.0
    assert trial_resources(plan, {"CPU": 16.0, "GPU": 8.0}) == (2.0, 0.25, "cuda")
    with pytest.raises(UsageError, match="the Ray cluster has no GPU"):
        trial_resources(plan, {"CPU": 16.0})
    plan.gpus_per_trial, plan.cpus_per_trial = 0.0, 4.0
    assert trial_resources(plan, {"CPU": 16.0, "GPU": 8.0}) == (4.0, 0.0, "cpu")  # GPUs there, none asked for
    with pytest.raises(UsageError, match="has 2 CPUs"):
        trial_resources(plan, {"CPU": 2.0})


def _trials() -> list[Trial]:
    return [Trial(f"m-seed{s}", "m.yaml", "m", {}, s, "", "m.yaml") for s in (0, 1)]


@pytest.mark.parametrize("option, runs", [("resume", ["m-seed1"]), ("force", ["m-seed0", "m-seed1"])])
def test_resume_skips_the_finished_trials_and_force_runs_them_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys, option: str, runs: list[str]) -> None:
    out = tmp_path / "sweep"
    write_marker(out / "m-seed0", {"id": "m-seed0", "status": "done"})
    write_marker(out / "m-seed1", {"id": "m-seed1", "status": "failed", "error": "E604: gone"})
    (out / "sweep.json").write_text("{}")
    given: list[str] = []
    monkeypatch.setattr(run, "import_tune", lambda: None)
    monkeypatch.setattr(run, "_tune", lambda tune, plan, todo, out, begin, **_:
                        begin() or given.extend(t.id for t in todo) or False)
    code = run.run_sweep(Plan(specs=["m.yaml"]), _trials(), out, **{option: True})
    assert given == runs
    assert code == 1  # the fake Ray ran nothing: a trial is not finished
    assert (out / "m-seed0" / "trial.json").exists() == (option == "resume")  # --force replaced the sweep
    printed, err = capsys.readouterr()
    if option == "resume":
        assert "1 of 2 trials finished before; not run again" in err and "2 trials: 1 done, 1 failed" in printed
    else:
        assert "finished before" not in err and "2 trials: 2 not finished" in printed


@pytest.mark.parametrize("given, env, used", [(None, None, None), (None, "10.0.0.1:6379", "10.0.0.1:6379"),
                                              ("HEAD:6379", "10.0.0.1:6379", "HEAD:6379")])
def test_a_ray_jobs_address_is_the_cluster_unless_one_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               given: str | None, env: str | None,
                                                               used: str | None) -> None:
    """RAY_ADDRESS (set in a Ray job) makes the sweep a cluster's, shipping its code; --address wins over it."""
    if env is None:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("RAY_ADDRESS", env)
    seen: dict[str, object] = {}
    monkeypatch.setattr(run, "import_tune", lambda: None)
    monkeypatch.setattr(run, "_tune", lambda tune, plan, todo, out, address, ship_code, **_:
                        seen.update(address=address, ship_code=ship_code) or out.mkdir() or False)
    run.run_sweep(Plan(specs=["m.yaml"]), _trials(), tmp_path / "sweep", address=given)
    assert seen == {"address": used, "ship_code": used is not None}

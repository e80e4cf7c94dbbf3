"""A sweep on a Ray cluster of two machines (two Ray nodes on this one, Ray's own test cluster, and a head that
runs no trials, as on a real cluster): both nodes are asked first whether they see the sweep folder, each runs a
trial of the copy of cogdsl the driver shipped, and each trial records its node. Without --address, a sweep
meanwhile starts a Ray instance of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cogdsl.cli.command import main
from cogdsl.sweep.provenance import code_version
from tests.tiny import tiny_ntm

ray = pytest.importorskip("ray")


def test_a_sweep_runs_on_both_nodes_of_a_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Started from the top of a checkout, whose cogdsl Ray would put first on the workers' path were it not for
    the shipped copy's working_dir."""
    from ray.cluster_utils import Cluster

    from cogdsl.sweep.run import _start_ray, import_tune

    import_tune()
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        nodes = {cluster.add_node(num_cpus=1).node_id for _ in range(2)}
        cluster.wait_for_nodes()
        spec = tmp_path / "tiny.yaml"
        spec.write_text(tiny_ntm(train={"batch": 2, "steps": 2, "eval_every": 2, "eval_size": 4}))
        out = tmp_path / "sweep"
        try:
            code = main(["sweep", str(spec), "--sequences", "4", "--no-tensorboard", "--seeds", "2", "--out", str(out),
                         "--address", cluster.address])
        finally:
            ray.shutdown()
        printed, err = capsys.readouterr()
        # without --address, a Ray instance of its own, though a cluster runs on this machine (Ray would join it)
        try:
            _start_ray(None, 1, False, print)
            assert {node["NodeID"] for node in ray.nodes()}.isdisjoint(nodes)
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()
    assert code == 0, printed + err
    assert f"2 nodes checked: each runs cogdsl and sees {out}" in err  # not the head: it runs no trials
    assert "the cluster has 2 CPUs" in err and "the workers run this cogdsl, shipped" in err
    markers = [json.loads((out / f"tiny_copy-seed{seed}" / "trial.json").read_text()) for seed in (0, 1)]
    for marker in markers:
        assert (marker["status"], marker["code"]) == ("done", {**code_version(), "shipped": True}), marker
    assert {m["node"] for m in markers} == nodes  # a trial on each node: each has one CPU, each trial takes one

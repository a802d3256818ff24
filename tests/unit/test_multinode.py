"""Multi-node trials (spec.trainer.nodes): the operator's Indexed Job and headless Service,
the pod it reads the result from, and `nas-train` as two nodes meeting on loopback."""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

from nas_contracts import cluster as contract
from nas_operator.builders.rendezvous import build_service
from nas_operator.builders.snapshot import TrainerSnapshot
from nas_operator.builders.trial_job import build_trial_job
from nas_operator.config import OperatorSettings
from nas_operator.trial_status import derive_job_status
from nas_trainer.spaces import get_space

TRAINER = {"dataset": "digits", "epochs": 1, "batchSize": 64, "learningRate": 0.1, "seed": 0,
           "reward": {"metric": "val_accuracy"}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def two_nodes(tmp_path: Path) -> list[tuple[subprocess.Popen, Path]]:
    architecture = get_space("macro-cnn", {"layers": 2}).random(random.Random(0))
    port = str(free_port())
    nodes = []
    for index in range(2):
        folder = tmp_path / f"node{index}"
        folder.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
        env.update({contract.ENV_NODES: "2", contract.ENV_NODE_RANK: str(index),
                    contract.ENV_RENDEZVOUS_HOST: "127.0.0.1",
                    contract.ENV_RENDEZVOUS_PORT: port,
                    contract.ENV_ARCHITECTURE: json.dumps(architecture.to_json()),
                    contract.ENV_TRAINER_CONFIG: json.dumps({**TRAINER, "processes": 1})})
        process = subprocess.Popen(
            [sys.executable, "-m", "nas_trainer.train_cli", "--termination-log",
             str(folder / "termination-log"), "-o", str(folder / "out")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        nodes.append((process, folder))
    return nodes


def test_two_nodes_train_one_child_and_only_global_rank_0_reports(tmp_path):
    nodes = two_nodes(tmp_path)
    ended = [(process.communicate(timeout=300), process.returncode) for process, _ in nodes]
    for (_, stderr), code in ended:
        assert code == 0, stderr[-2000:]
    (first_out, _), _ = ended[0]
    result = json.loads((tmp_path / "node0" / "termination-log").read_text())
    assert result["execution"] == "eager, DDP over 2 processes (gloo)"
    assert 0 < result["reward"] <= 1
    assert json.loads(first_out.strip())["reward"] == result["reward"]
    (second_out, _), _ = ended[1]
    assert second_out.strip() == ""
    assert not (tmp_path / "node1" / "termination-log").exists()
    assert not (tmp_path / "node1" / "out").exists()


def trial(nodes: int) -> tuple[dict, TrainerSnapshot]:
    doc = {"apiVersion": "archsearch.io/v1alpha1", "kind": "Trial",
           "metadata": {"name": "s-00003", "namespace": "ns", "uid": "u1"},
           "spec": {"searchName": "s", "index": 3, "architecture": {"space": "macro-cnn"}}}
    run = TrainerSnapshot.of({"trainer": {"image": "t:1", "nodes": nodes, "processes": 1},
                              "retries": 2, "timeoutSeconds": 60})
    return doc, run


def test_a_trial_of_two_nodes_is_an_indexed_job_with_its_headless_service():
    doc, run = trial(2)
    job = build_trial_job(doc, run, OperatorSettings())
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 2, 2)
    assert spec["backoffLimit"] == 2
    pod = spec["template"]["spec"]
    name = job["metadata"]["name"]
    assert pod["subdomain"] == name
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env[contract.ENV_NODES] == "2"
    assert env[contract.ENV_RENDEZVOUS_HOST] == f"{name}-0.{name}"
    assert "nodes" not in json.loads(env[contract.ENV_TRAINER_CONFIG])
    service = build_service(job)
    assert service["metadata"]["name"] == name
    assert service["metadata"]["ownerReferences"] == job["metadata"]["ownerReferences"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": name}


def test_a_trial_of_one_node_keeps_its_plain_job():
    doc, run = trial(1)
    spec = build_trial_job(doc, run, OperatorSettings())["spec"]
    assert "completionMode" not in spec and "subdomain" not in spec["template"]["spec"]


def ended_pod(index: int, message: str, created: str) -> dict:
    return {"metadata": {"name": f"p{index}", "creationTimestamp": created,
                         "annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "trainer",
                "state": {"terminated": {"exitCode": 0, "message": message}}}]}}


def test_the_result_is_index_0s_even_when_a_later_index_ends_last():
    job = {"metadata": {"name": "j"}, "status": {
        "succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}}
    pods = [ended_pod(0, json.dumps({"reward": 0.75, "metrics": {}}), "2026-01-01T00:00:00Z"),
            ended_pod(1, "", "2026-01-01T00:00:05Z")]
    status = derive_job_status({"jobName": "j"}, job, pods)
    assert status["phase"] == "Succeeded" and status["reward"] == 0.75


def test_the_test_node_agent_names_the_pods_of_a_subdomain_with_a_service():
    from tests.cluster.pod_dns import hosts_text

    pods = [{"metadata": {"name": f"j-{i}-x"}, "spec": {"hostname": f"j-{i}", "subdomain": "j"}}
            for i in range(2)]
    pods.append({"metadata": {"name": "other"}, "spec": {"hostname": "o", "subdomain": "k"}})
    text = hosts_text("ns", "j", pods, service_exists=True)
    assert "127.0.0.1\tj-0.j j-0.j.ns.svc j-0.j.ns.svc.cluster.local" in text
    assert "j-1.j " in text and "o.k" not in text
    assert "j-0.j" not in hosts_text("ns", "j", pods, service_exists=False)

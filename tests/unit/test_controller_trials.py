"""Trial objects as the controller writes and reads them (contract 4), and which existing
Trials a resuming controller adopts."""
from __future__ import annotations

import pytest

from nas_trainer.controller.executor import architecture_of, outcome_of
from nas_trainer.controller.loop import plan_adoption
from nas_trainer.controller.status import controller_status
from nas_trainer.controller.trials_api import build_trial, trial_index, trial_name, view_trial
from nas_trainer.spaces import get_space

SEARCH = {"apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
          "metadata": {"name": "cora", "namespace": "team", "uid": "u-1", "generation": 3},
          "spec": {}}


@pytest.fixture(scope="module")
def space():
    return get_space("nas-bench-201")


def trial(index: int, phase: str | None = None, **status) -> dict:
    body = build_trial(SEARCH, index, {"space": "x", "tokens": [index], "canonical": {},
                                       "hash": f"h{index}"}, -1.5, 2)
    if phase:
        body["status"] = {"phase": phase, **status}
    return body


def test_trial_body_follows_contract_4(space):
    arch = space.from_tokens([0, 1, 2, 3, 4, 0]).with_meta(log_prob=-9.5, policy_version=4)
    body = build_trial(SEARCH, 17, arch.to_json(), arch.meta["log_prob"], 4)
    assert body["metadata"]["name"] == "cora-00017" == trial_name("cora", 17)
    assert body["metadata"]["namespace"] == "team"
    assert body["metadata"]["labels"] == {"archsearch.io/search": "cora",
                                          "archsearch.io/trial-index": "17"}
    owner = body["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "ArchitectureSearch", "cora", "u-1", False)
    spec = body["spec"]
    assert spec["searchName"] == "cora" and spec["index"] == 17
    assert spec["logProb"] == -9.5 and spec["policyVersion"] == 4
    assert spec["searchGeneration"] == 3
    assert spec["architecture"]["hash"] == arch.hash
    assert spec["architecture"]["tokens"] == [0, 1, 2, 3, 4, 0]
    assert "meta" not in spec["architecture"]
    # what is written is read back as the same architecture, sampling meta included
    back = architecture_of(space, view_trial(body))
    assert back == arch and back.meta["log_prob"] == -9.5 and back.meta["policy_version"] == 4


def test_index_comes_from_spec_else_label():
    body = trial(4)
    assert trial_index(body) == 4
    del body["spec"]["index"]
    assert trial_index(body) == 4


def test_outcomes_of_finished_trials():
    ok = outcome_of(view_trial(trial(1, "Succeeded", reward=0.8, metrics={"val_accuracy": 0.9},
                                     seconds=1.5, parameters=1000)))
    assert (ok.index, ok.succeeded, ok.reward, ok.metrics, ok.seconds, ok.parameters) == (
        1, True, 0.8, {"val_accuracy": 0.9}, 1.5, 1000)
    bad = outcome_of(view_trial(trial(2, "Failed", reason="PermanentError", message="no")))
    assert (bad.succeeded, bad.reward, bad.reason, bad.message) == (False, None, "PermanentError", "no")
    no_reward = outcome_of(view_trial(trial(3, "Succeeded")))
    assert not no_reward.succeeded and no_reward.reason == "InvalidResult"
    assert not view_trial(trial(4, "Running")).finished
    assert not view_trial(trial(5)).finished


def test_adoption_continues_after_the_largest_index():
    views = [view_trial(trial(i)) for i in (0, 1, 2, 5, 6)]
    plan = plan_adoption(views, next_index=3, known={0, 1, 2})
    assert [v.index for v in plan.adopt] == [5, 6]
    assert plan.next_index == 7


def test_trials_of_a_lost_volume_are_all_adopted():
    views = [view_trial(trial(i, "Succeeded", reward=0.1 * i)) for i in range(4)]
    plan = plan_adoption(views, next_index=0, known=set())
    assert [v.index for v in plan.adopt] == [0, 1, 2, 3] and plan.next_index == 4


def test_unknown_trials_below_the_counter_are_not_adopted():
    # abandoned when a goal was reached: they stay abandoned
    views = [view_trial(trial(i)) for i in range(4)]
    plan = plan_adoption(views, next_index=4, known={0, 1})
    assert plan.adopt == [] and plan.ignored == [2, 3] and plan.next_index == 4


def test_nothing_to_adopt_keeps_the_counter():
    assert plan_adoption([], next_index=9, known={1}).next_index == 9


def test_controller_status_carries_the_decision():
    running = controller_status("", "3/10", policy_version=2, trials_created=5, epoch=1)
    assert running == {"decision": "", "message": "3/10", "policyVersion": 2,
                       "trialsCreated": 5, "epoch": 1}
    done = controller_status("GoalReached", "goal", 7, 12, 2)
    assert done["decision"] == "GoalReached" and done["decisionTime"].endswith("Z")
    with pytest.raises(ValueError, match="decision must be one of"):
        controller_status("Done", "", 0, 0, 0)

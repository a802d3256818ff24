"""The controller's executor reports each submitted Trial's outcome exactly once, from the
Trial events its informer queues, however many Trials the search has made."""
from __future__ import annotations

import pytest
from kubernetes.client import ApiException

from nas_trainer.controller.executor import KubernetesExecutor
from nas_trainer.controller.informer import Event
from nas_trainer.controller.trials_api import build_trial
from nas_trainer.search import TrialRequest
from nas_trainer.spaces import get_space

SEARCH = {"apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
          "metadata": {"name": "cora", "namespace": "team", "uid": "u-1", "generation": 1},
          "spec": {"trials": {"max": 10}}}


class FakeTrialsApi:
    namespace, search, selector = "team", "cora", "archsearch.io/search=cora"

    def __init__(self) -> None:
        self.search_reads = 0
        self.search_read_fails = False

    def create_or_adopt(self, body):
        return body, True

    def read_search(self):
        self.search_reads += 1
        if self.search_read_fails:
            raise ApiException(status=503, reason="the API server is restarting")
        return SEARCH


@pytest.fixture
def executor():
    space = get_space("nas-bench-201")
    api = FakeTrialsApi()
    ex = KubernetesExecutor(None, api, SEARCH, space, check_writable=lambda: None)
    ex.api = api
    ex.space_ = space
    return ex


def submit(executor, index: int) -> dict:
    arch = executor.space_.from_tokens([index % 5, 0, 1, 2, 3, 4])
    executor.submit(TrialRequest(index, arch))
    return build_trial(SEARCH, index, arch.to_json(), None, 0)


def finished(body: dict, reward: float) -> Event:
    done = {**body, "status": {"phase": "Succeeded", "reward": reward}}
    return Event("MODIFIED", done, "trials")


def test_each_outcome_is_reported_once_and_repeats_of_its_event_change_nothing(executor):
    bodies = [submit(executor, i) for i in range(3)]
    executor.queue.put(finished(bodies[1], 0.7))
    executor.queue.put(finished(bodies[1], 0.7))  # a resync delivers it again
    assert [(o.index, o.reward) for o in executor.wait(timeout=0.1)] == [(1, 0.7)]
    executor.queue.put(finished(bodies[1], 0.7))
    executor.queue.put(Event("MODIFIED", bodies[0], "trials"))  # still running
    assert executor.wait(timeout=0.1) == []
    executor.queue.put(finished(bodies[2], 0.9))
    executor.queue.put(finished(bodies[0], 0.5))
    assert [(o.index, o.reward) for o in executor.wait(timeout=0.1)] == [(0, 0.5), (2, 0.9)]


def test_a_trial_that_finished_before_it_was_expected_is_reported(executor):
    body = submit(executor, 0)
    executor.queue.put(finished(body, 0.4))
    executor._drain()  # the event is seen before the loop asks (a resumed controller)
    assert [o.reward for o in executor.wait(timeout=0.1)] == [0.4]


def test_a_deleted_trial_fails_and_a_failed_look_at_the_search_loses_no_outcome(executor):
    bodies = [submit(executor, i) for i in range(2)]
    executor.queue.put(finished(bodies[0], 0.6))
    executor.queue.put(Event("DELETED", bodies[1], "trials"))
    executor.api.search_read_fails = True
    with pytest.raises(ApiException):
        executor.wait(timeout=0.1)
    executor.api.search_read_fails = False
    outcomes = executor.wait(timeout=0.1)
    assert [(o.index, o.succeeded, o.reason or "") for o in outcomes] == [
        (0, True, ""), (1, False, "TrialDeleted")]

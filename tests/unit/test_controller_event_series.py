"""The controller's recurring Events are one Event per window, counted, not one per trial."""
from __future__ import annotations

from types import SimpleNamespace

from nas_trainer.controller.events import SERIES_WINDOW, EventRecorder

SEARCH = {"metadata": {"name": "cifar", "namespace": "team-a", "uid": "u-1"}}


class FakeEvents:
    """The two CoreV1Api calls the recorder makes, kept as the API server would."""

    def __init__(self) -> None:
        self.events: dict[str, dict] = {}
        self.fail_patch = False

    def create_namespaced_event(self, namespace, body):
        name = f"{body.metadata.generate_name}{len(self.events)}"
        self.events[name] = {"reason": body.reason, "message": body.message, "count": body.count,
                             "type": body.type}
        return SimpleNamespace(metadata=SimpleNamespace(name=name))

    def patch_namespaced_event(self, name, namespace, patch, _content_type=None):
        assert _content_type == "application/merge-patch+json"
        if self.fail_patch or name not in self.events:
            raise RuntimeError("404 not found")
        self.events[name].update(count=patch["count"], message=patch["message"])


def recorder(api: FakeEvents, now: list[float]) -> EventRecorder:
    return EventRecorder(api, SEARCH, "controller-0", clock=lambda: now[0])


def test_trials_created_within_a_window_are_one_event_with_their_count():
    api, now = FakeEvents(), [0.0]
    events = recorder(api, now)
    for i in range(50):
        now[0] = i * 2.0
        events.emit("TrialCreated", f"trial cifar-{i:05d}: conv3x3")
    assert len(api.events) == 1
    (event,) = api.events.values()
    assert event["count"] == 50
    assert event["message"] == "trial cifar-00049: conv3x3"


def test_a_new_event_starts_after_the_window_and_other_reasons_are_their_own():
    api, now = FakeEvents(), [0.0]
    events = recorder(api, now)
    events.emit("TrialCreated", "trial cifar-00000")
    events.emit("NewBest", "trial cifar-00000 reached 0.9")
    events.emit("NewBest", "trial cifar-00001 reached 0.95")
    now[0] = SERIES_WINDOW + 1
    events.emit("TrialCreated", "trial cifar-00002")
    reasons = sorted((e["reason"], e["count"]) for e in api.events.values())
    assert reasons == [("NewBest", 1), ("NewBest", 1), ("TrialCreated", 1), ("TrialCreated", 1)]


def test_an_event_deleted_under_the_series_is_replaced_not_lost():
    api, now = FakeEvents(), [0.0]
    events = recorder(api, now)
    events.emit("TrialCreated", "trial cifar-00000")
    api.events.clear()  # the event TTL or a cleanup removed it
    events.emit("TrialCreated", "trial cifar-00001")
    events.emit("TrialCreated", "trial cifar-00002")
    assert [(e["message"], e["count"]) for e in api.events.values()] == [("trial cifar-00002", 2)]


def test_an_api_server_that_refuses_events_never_stops_the_search():
    class Refusing(FakeEvents):
        def create_namespaced_event(self, namespace, body):
            raise RuntimeError("403 forbidden")

    api, now = Refusing(), [0.0]
    events = recorder(api, now)
    events.emit("TrialCreated", "trial cifar-00000")
    events.emit("TrialCreated", "trial cifar-00001")
    assert api.events == {}

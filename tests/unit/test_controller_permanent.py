"""Errors no restart of the controller mends: a spec `nas validate` refuses, a Trial the
API server refuses. The controller exits 3 at once with a termination message the
operator turns into the search's Failed condition (contracts section 7)."""
from __future__ import annotations

import json

import pytest
from kubernetes.client.rest import ApiException

from nas_trainer.controller import main as controller_main
from nas_trainer.controller.permanent import (
    EXIT_PERMANENT,
    InvalidSpec,
    TrialRefused,
    check_spec,
    termination_message,
    write_termination_message,
)
from nas_trainer.controller.trials_api import TrialsApi


def document(**spec) -> dict:
    base = {"searchSpace": {"name": "macro-cnn"}, "strategy": {"name": "random", "seed": 0},
            "trials": {"max": 2, "parallelism": 1}, "trainer": {"dataset": "synthetic"}}
    base.update(spec)
    return {"apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
            "metadata": {"name": "s", "namespace": "ns"}, "spec": base}


def test_a_valid_spec_passes():
    assert check_spec(document()).name == "s"


@pytest.mark.parametrize("trainer, field", [
    ({}, "spec.trainer.dataset"),
    ({"dataset": "synthetic", "model": {"nonsense": 1}}, "spec.trainer.model.nonsense"),
    ({"dataset": "synthetic", "reward": {"metric": "val_acc"}}, "spec.trainer.reward.metric"),
])
def test_what_nas_validate_refuses_is_an_invalid_spec_naming_the_field(trainer, field):
    with pytest.raises(InvalidSpec) as caught:
        check_spec(document(trainer=trainer))
    assert caught.value.reason == "InvalidSpec"
    assert field in caught.value.message


def test_a_manifest_error_is_an_invalid_spec():
    with pytest.raises(InvalidSpec, match="spec.trials.max"):
        check_spec(document(trials={"max": 0, "parallelism": 1}))


def test_the_termination_message_is_json_with_reason_message_and_generation(tmp_path):
    err = InvalidSpec("spec.trainer.dataset is required")
    assert json.loads(termination_message(err, 4)) == {
        "reason": "InvalidSpec", "message": "spec.trainer.dataset is required", "generation": 4}
    path = tmp_path / "termination-log"
    write_termination_message(err, None, str(path))
    assert json.loads(path.read_text()) == {"reason": "InvalidSpec",
                                            "message": "spec.trainer.dataset is required"}
    long = InvalidSpec("x" * 10000)
    assert len(termination_message(long, 1)) < 4096  # what the kubelet keeps


class RefusingCustomApi:
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message

    def create_namespaced_custom_object(self, *_):
        raise ApiException(status=self.status, reason="Invalid", body=json.dumps(
            {"kind": "Status", "message": self.message, "code": self.status}))


@pytest.mark.parametrize("status", [400, 403, 413, 422])
def test_a_trial_the_server_refuses_is_permanent_with_its_words(status):
    api = TrialsApi(RefusingCustomApi(status, "denied by policy p: no Trials here"), "ns", "s")
    body = {"metadata": {"name": "s-00000"}}
    with pytest.raises(TrialRefused) as caught:
        api.create_or_adopt(body)
    assert caught.value.reason == "TrialRefused"
    assert caught.value.message == (
        f"the API server refused to create Trial s-00000 (HTTP {status}): "
        "denied by policy p: no Trials here")


def test_main_exits_3_with_the_termination_message(monkeypatch, tmp_path):
    path = tmp_path / "termination-log"
    monkeypatch.setenv("NAS_TERMINATION_LOG", str(path))
    monkeypatch.setenv("NAS_SEARCH_NAME", "s")
    monkeypatch.setenv("NAS_NAMESPACE", "ns")
    told = []

    class Runner:
        generation = 7

        def __init__(self, *_):
            pass

        def run(self):
            raise InvalidSpec("spec.trainer.dataset is required")

        def report_permanent(self, err):
            told.append(err.reason)

        def release(self):
            pass

    import nas_trainer.controller.runner as runner_module
    monkeypatch.setattr(runner_module, "ControllerRunner", Runner)
    monkeypatch.setattr(controller_main, "load_api_client", lambda: None)
    assert controller_main.main([]) == EXIT_PERMANENT == 3
    assert json.loads(path.read_text()) == {
        "reason": "InvalidSpec", "message": "spec.trainer.dataset is required", "generation": 7}
    assert told == ["InvalidSpec"]


def test_a_bad_environment_exits_3_too(monkeypatch, tmp_path):
    path = tmp_path / "termination-log"
    monkeypatch.setenv("NAS_TERMINATION_LOG", str(path))
    monkeypatch.delenv("NAS_SEARCH_NAME", raising=False)
    assert controller_main.main([]) == EXIT_PERMANENT
    said = json.loads(path.read_text())
    assert said["reason"] == "InvalidConfiguration" and "NAS_SEARCH_NAME" in said["message"]


def test_a_status_the_server_refuses_is_permanent():
    from nas_trainer.controller.permanent import StatusRefused

    class RefusingStatus:
        def patch_namespaced_custom_object_status(self, *_):
            raise ApiException(status=422, reason="Invalid", body=json.dumps(
                {"message": "status.controller.decision: Unsupported value"}))

    with pytest.raises(StatusRefused) as caught:
        TrialsApi(RefusingStatus(), "ns", "s").patch_search_status({"controller": {}})
    assert caught.value.reason == "StatusRefused"
    assert "Unsupported value" in caught.value.message

"""What an API server that has just restarted says is not a refusal (found by
tests/e2e/test_faults_e2e.py): its admission policies answer 422 "failed to configure
policy" until their paramKind's resource is discovered again (up to a minute). The
operator and the controller retry it instead of failing the search or the Trial."""
from __future__ import annotations

import json

from kubernetes.client.rest import ApiException
from nas_operator.refusals import is_permanent, refused
from nas_trainer.controller.permanent import is_refusal
from nas_trainer.controller.retry import is_transient, retrying

NOT_READY = (
    'architecturesearches.archsearch.io "s" is forbidden: ValidatingAdmissionPolicy '
    "'archsearch.io-controller-status' denied request: failed to configure policy: failed "
    "to find resource referenced by paramKind: 'archsearch.io/v1alpha1, Kind=ArchitectureSearch'"
)
DENIED = "ValidatingAdmissionPolicy 'archsearch.io-search-pods' denied request: no hostPath"


def api_error(status: int, message: str) -> ApiException:
    err = ApiException(status=status, reason="Unprocessable Entity")
    err.body = json.dumps({"kind": "Status", "status": "Failure", "message": message})
    return err


def test_the_operator_retries_a_policy_the_server_has_not_configured_yet():
    assert not is_permanent(api_error(422, NOT_READY))
    assert type(refused("patch", "ArchitectureSearch", "s", api_error(422, NOT_READY))) is ApiException
    assert is_permanent(api_error(422, DENIED))  # a policy that says no still does


def test_the_controller_retries_a_policy_the_server_has_not_configured_yet():
    assert not is_refusal(api_error(422, NOT_READY)) and is_transient(api_error(422, NOT_READY))
    assert is_refusal(api_error(422, DENIED)) and not is_transient(api_error(422, DENIED))
    answers = [api_error(422, NOT_READY), {"ok": True}]

    def call():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retrying(call, "patching the status") == {"ok": True}

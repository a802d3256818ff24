"""The admin's search pod policy: parsed from the chart's settings, baked into the
admission policy that checks each search against its author's rights."""

from __future__ import annotations

import pytest
from nas_operator.builders.search_policy import build_search_pod_policy
from nas_operator.config import SearchPodPolicy, SettingsError, load_settings


def messages(policy: SearchPodPolicy) -> list[str]:
    return [v["message"] for v in build_search_pod_policy(policy)["spec"]["validations"]]


def test_by_default_every_reference_is_checked_against_the_authors_rights():
    found = messages(SearchPodPolicy())
    assert any("a configMap volume may name only configmaps you may get" in m for m in found)
    assert any("a persistentVolumeClaim volume may name only" in m for m in found)
    assert any("a secret volume may name only secrets you may get" in m for m in found)
    assert any("secretKeyRef may name only Secrets you may get" in m for m in found)
    assert any("imagePullSecrets may name only Secrets you may get" in m for m in found)
    assert any(m.startswith("spec.trainer.serviceAccountName") for m in found)
    assert not any("lets a search add only volumes of kind" in m for m in found)


def test_an_admin_may_narrow_the_volume_kinds_and_refuse_secrets():
    found = messages(SearchPodPolicy(volume_types=("emptyDir",), secret_references="Never"))
    assert "this cluster lets a search add only volumes of kind emptyDir" in found[0]
    assert any("secretKeyRef is not allowed on this cluster" in m for m in found)
    assert not any("may get" in m for m in found if "volumes" in m)


def test_an_admin_listed_service_account_is_allowed_to_every_author():
    policy = build_search_pod_policy(SearchPodPolicy(service_accounts=("datasets-reader",)))
    rule = policy["spec"]["validations"][-1]["expression"]
    assert "in ['datasets-reader']" in rule


def test_only_what_an_author_wrote_in_spec_trainer_is_checked():
    condition = build_search_pod_policy(SearchPodPolicy())["spec"]["matchConditions"][0]
    assert "request.operation == 'CREATE'" in condition["expression"]
    assert "object.spec.trainer != oldObject.spec.trainer" in condition["expression"]


def test_settings_come_from_the_charts_variables():
    settings = load_settings({
        "NAS_OPERATOR_TRAINER_VOLUME_TYPES": '["emptyDir", "configMap"]',
        "NAS_OPERATOR_SECRET_REFERENCES": "Never",
        "NAS_OPERATOR_TRAINER_SERVICE_ACCOUNTS": '["reader"]',
    })
    assert settings.search_policy == SearchPodPolicy(
        volume_types=("emptyDir", "configMap"), secret_references="Never",
        service_accounts=("reader",))


@pytest.mark.parametrize("env, words", [
    ({"NAS_OPERATOR_TRAINER_VOLUME_TYPES": '["hostPath"]'},
     "NAS_OPERATOR_TRAINER_VOLUME_TYPES: hostPath not allowed"),
    ({"NAS_OPERATOR_SECRET_REFERENCES": "Sometimes"},
     "NAS_OPERATOR_SECRET_REFERENCES must be one of Never, IfAuthorCanRead, Always"),
    ({"NAS_OPERATOR_TRAINER_SERVICE_ACCOUNTS": "reader"},
     "NAS_OPERATOR_TRAINER_SERVICE_ACCOUNTS must be a JSON list of strings"),
])
def test_a_setting_the_operator_cannot_use_is_refused_in_words(env, words):
    with pytest.raises(SettingsError, match=words):
        load_settings(env)

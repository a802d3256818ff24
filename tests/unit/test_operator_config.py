"""Operator settings from the environment, and the kopf settings the operator applies."""

from __future__ import annotations

import logging

import kopf
import pytest
from nas_operator.config import OperatorSettings, SettingsError, load_settings
from nas_operator.handlers.startup import configure


def test_defaults():
    settings = load_settings({})
    assert settings == OperatorSettings()
    assert settings.controller_command == ("nas-controller",)
    assert settings.trial_job_ttl_seconds == 86400 and settings.run_as_user == 65532


def test_values_from_the_environment():
    settings = load_settings(
        {
            "NAS_OPERATOR_CONTROLLER_IMAGE": "ctl:1",
            "NAS_OPERATOR_CONTROLLER_COMMAND": '["python", "-m", "ctl"]',
            "NAS_OPERATOR_CONTROLLER_RESOURCES": '{"requests": {"cpu": "500m"}}',
            "NAS_OPERATOR_TRIAL_JOB_TTL_SECONDS": "none",
            "NAS_OPERATOR_RUN_AS_USER": "none",
            "NAS_OPERATOR_MANAGE_ADMISSION_POLICY": "false",
            "NAS_OPERATOR_STATUS_INTERVAL_SECONDS": "0.5",
        }
    )
    assert settings.controller_image == "ctl:1" and settings.controller_command == (
        "python",
        "-m",
        "ctl",
    )
    assert settings.controller_resources == {"requests": {"cpu": "500m"}}
    assert settings.trial_job_ttl_seconds is None and settings.run_as_user is None
    assert settings.manage_admission_policy is False and settings.status_interval_seconds == 0.5


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"NAS_OPERATOR_TRIAL_JOB_TTL_SECONDS": "soon"},
            "NAS_OPERATOR_TRIAL_JOB_TTL_SECONDS must be an integer",
        ),
        ({"NAS_OPERATOR_MANAGE_ADMISSION_POLICY": "maybe"}, "must be true or false"),
        ({"NAS_OPERATOR_CONTROLLER_RESOURCES": "{cpu"}, "must be JSON"),
        ({"NAS_OPERATOR_STATUS_INTERVAL_SECONDS": "0"}, "must be > 0"),
    ],
)
def test_bad_values_say_what_is_wrong(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_kopf_keeps_its_state_in_annotations_not_in_status():
    settings = kopf.OperatorSettings()
    configure(settings=settings)
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert settings.peering.standalone is True
    assert settings.posting.level == logging.WARNING
    assert settings.scanning.disabled is True

"""Which API errors the controller retries, and that a lost lease ends the retries."""
from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException
from urllib3.exceptions import ProtocolError

from nas_trainer.controller import retry
from nas_trainer.controller.lease import LeaseLost


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(retry.time, "sleep", lambda seconds: None)


def flaky(failures: list[BaseException], result: str = "ok"):
    def call():
        if failures:
            raise failures.pop(0)
        return result
    return call


def test_server_away_or_overloaded_is_retried():
    errors = [ProtocolError("connection reset"), ApiException(status=503), ApiException(status=429),
              ConnectionRefusedError()]
    assert retry.retrying(flaky(errors), "creating trial") == "ok"
    assert errors == []


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_a_server_that_says_no_is_not_retried(status):
    with pytest.raises(ApiException) as raised:
        retry.retrying(flaky([ApiException(status=status)]), "creating trial")
    assert raised.value.status == status


def test_a_lost_lease_ends_the_retries():
    def lost():
        raise LeaseLost("gone")
    with pytest.raises(LeaseLost):
        retry.retrying(flaky([ApiException(status=503)] * 5), "creating trial", check=lost)


def test_retries_give_up_after_their_time(monkeypatch):
    clock = iter(range(0, 1000, 50))
    monkeypatch.setattr(retry.time, "monotonic", lambda: next(clock))
    with pytest.raises(ApiException):
        retry.retrying(flaky([ApiException(status=503)] * 10), "listing", give_up_after_s=120)


def test_backoff_doubles_up_to_its_cap_and_resets():
    backoff = retry.Backoff(first_s=0.5, max_s=3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5

"""Leader-lease decisions (client-go's rules, without trusting another holder's clock)."""
from __future__ import annotations

from nas_trainer.controller.lease import LeaseRecord, Observation, may_take_over


def lease(holder: str, renew: str = "t1", transitions: int = 0, duration: int = 10) -> LeaseRecord:
    return LeaseRecord(holder=holder, duration_s=duration, renew_time=renew,
                       transitions=transitions, resource_version="1")


def test_absent_released_or_own_lease_is_taken_at_once():
    assert may_take_over(None, "me", None, now=0.0)
    assert may_take_over(lease(""), "me", None, now=0.0)
    assert may_take_over(lease("me"), "me", None, now=0.0)


def test_someone_elses_lease_waits_a_full_duration_from_our_first_sight():
    record = lease("other")
    seen = Observation(record, seen_at=100.0)
    assert not may_take_over(record, "me", None, now=100.0)
    assert not may_take_over(record, "me", seen, now=109.9)
    assert may_take_over(record, "me", seen, now=110.0)


def test_a_renewed_lease_is_not_taken():
    seen = Observation(lease("other", renew="t1"), seen_at=100.0)
    renewed = lease("other", renew="t2")
    assert not may_take_over(renewed, "me", seen, now=500.0)

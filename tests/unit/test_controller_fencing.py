"""Fencing: only the controller whose epoch is on the volume may write to it."""
from __future__ import annotations

import pytest

from nas_trainer.controller.fencing import (EpochRecord, Fence, FencedOut, check_epoch,
                                            identity_from_env, next_epoch)
from nas_trainer.controller.guard import FencedResultsFolder, WriteGuard
from nas_trainer.controller.lease import LeaseLost
from nas_trainer.results import TrialRecord


class HeldLease:
    """A lease that is held until `lose()` (the real one needs an API server)."""

    def __init__(self) -> None:
        self.held = True

    def lose(self) -> None:
        self.held = False

    def ensure_held(self) -> None:
        if not self.held:
            raise LeaseLost("lost")


def record(index: int) -> TrialRecord:
    return TrialRecord(index=index, hash=f"h{index}", architecture={}, status="Succeeded",
                       reward=0.5)


def test_each_takeover_increments_the_epoch(tmp_path):
    first = Fence(tmp_path, "pod-a/1")
    assert first.take_over() == 1
    second = Fence(tmp_path, "pod-b/2")
    assert second.take_over() == 2
    assert Fence(tmp_path, "pod-a/3").take_over() == 3
    assert EpochRecord.from_text((tmp_path / "epoch").read_text()) == EpochRecord(3, "pod-a/3")


def test_a_replaced_controller_is_refused(tmp_path):
    old = Fence(tmp_path, "pod-a/1")
    old.take_over()
    old.check()  # still ours
    Fence(tmp_path, "pod-b/2").take_over()
    with pytest.raises(FencedOut, match="epoch 2 of 'pod-b/2'"):
        old.check()


def test_same_epoch_number_from_a_racing_controller_is_refused():
    # two controllers that both read epoch 3 write 4: the last writer wins, the other
    # one sees a different holder
    mine = next_epoch(EpochRecord(3, "x"), "pod-a/1")
    theirs = next_epoch(EpochRecord(3, "x"), "pod-b/2")
    assert mine.epoch == theirs.epoch == 4
    with pytest.raises(FencedOut):
        check_epoch(theirs, mine)


def test_a_bare_number_and_an_empty_file_are_read():
    assert EpochRecord.from_text("7\n") == EpochRecord(7, "")
    assert EpochRecord.from_text("") == EpochRecord(0, "")


def test_check_before_taking_over_is_refused(tmp_path):
    with pytest.raises(FencedOut, match="no fencing epoch"):
        Fence(tmp_path, "pod-a/1").check()


def test_fenced_folder_refuses_every_write_once_replaced(tmp_path):
    fence = Fence(tmp_path / "checkpoint", "pod-a/1")
    fence.take_over()
    folder = FencedResultsFolder(tmp_path, WriteGuard(HeldLease(), fence))
    folder.append_trial(record(0))
    folder.save_checkpoint({"next_index": 1}, {"strategy": "random"})

    Fence(tmp_path / "checkpoint", "pod-b/2").take_over()
    with pytest.raises(FencedOut):
        folder.append_trial(record(1))
    with pytest.raises(FencedOut):
        folder.save_checkpoint({"next_index": 2}, {"strategy": "random"})
    with pytest.raises(FencedOut):
        folder.write_best(record(0))
    assert [r.index for r in folder.read_trials()] == [0]
    assert folder.load_checkpoint()[0] == {"next_index": 1}


def test_fenced_folder_refuses_writes_once_the_lease_is_lost(tmp_path):
    fence = Fence(tmp_path / "checkpoint", "pod-a/1")
    fence.take_over()
    lease = HeldLease()
    folder = FencedResultsFolder(tmp_path, WriteGuard(lease, fence))
    lease.lose()
    with pytest.raises(LeaseLost):
        folder.append_trial(record(0))
    assert folder.read_trials() == []


def test_identity_is_stable_for_a_pod_and_unique_without_a_uid():
    pod = {"NAS_POD_NAME": "cora-controller", "NAS_POD_UID": "1234"}
    assert identity_from_env(pod) == identity_from_env(pod) == "cora-controller/1234"
    no_uid = {"NAS_POD_NAME": "cora-controller"}
    assert identity_from_env(no_uid) != identity_from_env(no_uid)
    assert identity_from_env({"NAS_CONTROLLER_ID": "me"}) == "me"

"""The test node agent's launcher finds the folders a non-root container could not enter
on its way to the project and the interpreter (a clone under /root or a mktemp -d folder)."""

from __future__ import annotations

import os

from tests.cluster.launcher import closed_ancestors


def test_closed_folders_on_the_way_are_found_outermost_first(tmp_path):
    outer = tmp_path / "private"
    inner = outer / "clone" / "secret"
    inner.mkdir(parents=True)
    outer.chmod(0o700)
    inner.chmod(0o750)
    (outer / "clone").chmod(0o755)
    closed = closed_ancestors([str(inner / "missing-file")])
    mine = [p for p in closed if p.startswith(str(outer))]
    assert mine == [str(outer), str(inner)]
    # folders others may enter are left alone
    assert str(outer / "clone") not in closed
    assert all(not os.stat(p).st_mode & 0o001 for p in closed)

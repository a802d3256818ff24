"""`nas validate` on the catalogue of bad manifests (tests/catalogue/): each is refused with
one line naming the field the API server names (exit 2, never a traceback), except the few
only the cluster can judge, which are documented as such. tests/e2e/test_catalogue_e2e.py
applies the same files to the real API server."""
from __future__ import annotations


import pytest
from typer.testing import CliRunner

from nas_trainer.cli import app

from tests.cluster.catalogue import CASES, header

runner = CliRunner()

def test_the_catalogue_is_large_and_every_case_says_what_the_user_must_see():
    assert len(CASES) >= 80
    for path in CASES:
        fields = header(path)
        assert fields.get("case") and fields.get("field"), path.name
        assert ("admission" in fields) != ("condition" in fields), path.name
    counts = {kind: sum(kind in header(p) for p in CASES) for kind in ("admission", "condition")}
    print(f"catalogue: {counts['admission']} refused at admission, {counts['condition']} "
          f"surfaced as a condition, {len(CASES) - sum(counts.values())} accepted")


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_nas_validate_refuses_it_naming_the_field(path):
    fields = header(path)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    output = result.output.strip()
    assert "Traceback" not in output
    if fields.get("validate", "").startswith("cluster-only"):
        assert result.exit_code == 0, output   # documented: only the cluster can tell
        return
    assert result.exit_code == 2, output
    assert len(output.splitlines()) == 1, output
    assert output.startswith("error: ") and fields["field"] in output, output

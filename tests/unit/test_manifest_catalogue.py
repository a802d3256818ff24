"""`nas validate` on the catalogue of bad manifests (tests/catalogue/): each is refused with
one line naming the field the API server names (exit 2, never a traceback), except the few
only the cluster can judge, which are documented as such. tests/e2e/test_catalogue_e2e.py
applies the same files to the real API server."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nas_trainer.cli import app

CATALOGUE = Path(__file__).resolve().parents[2] / "tests" / "catalogue"
runner = CliRunner()


def header(path: Path) -> dict[str, str]:
    """The `# key: value` lines at the top of a catalogue file."""
    fields = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        fields[key] = value
    return fields


CASES = sorted(CATALOGUE.glob("*.yaml"))


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

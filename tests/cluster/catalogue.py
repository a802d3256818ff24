"""The catalogue of bad manifests (tests/catalogue/): its files and their headers, read by
the admission e2e test and by the `nas validate` unit test alike."""

from __future__ import annotations

from pathlib import Path

from .paths import REPO_ROOT

CATALOGUE = REPO_ROOT / "tests" / "catalogue"
CASES = sorted(CATALOGUE.glob("*.yaml"))


def header(path: Path) -> dict[str, str]:
    """The `# key: value` lines at the top of a catalogue file."""
    fields = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        fields[key] = value
    return fields

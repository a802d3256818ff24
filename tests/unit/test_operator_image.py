"""Lint of the operator image's Dockerfile (no image is built in the test suite)."""

from __future__ import annotations

import json
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_slim_python_base_pinned_to_a_version():
    base = next(rest for word, rest in instructions() if word == "FROM")
    if base == "${BASE_IMAGE}":  # the tests pass their own base; the default is the release's
        base = next(rest for word, rest in instructions()
                    if word == "ARG" and rest.startswith("BASE_IMAGE=")).split("=", 1)[1]
    assert base.startswith("python:3.") and base.endswith("-slim")


def test_installs_only_the_operator_package():
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    copies = [rest for word, rest in instructions() if word == "COPY"]
    assert copies == ["contracts/ /src/contracts/", "operator/ /src/operator/"]
    assert (
        "pip install --no-deps /src/contracts /src/operator" in runs
        and "torch" not in runs
        and "trainer-image" not in runs
    )


def test_runs_as_a_numeric_non_root_user():
    users = [rest for word, rest in instructions() if word == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) != 0


def test_entrypoint_runs_kopf_with_liveness_on_all_namespaces():
    entrypoint = json.loads(next(rest for word, rest in instructions() if word == "ENTRYPOINT"))
    assert entrypoint[:4] == ["kopf", "run", "-m", "nas_operator"]
    assert "--all-namespaces" in entrypoint
    assert "--liveness=http://0.0.0.0:8081/healthz" in entrypoint

"""The manifest parser's one error type (its own module: nas_trainer.manifest and its helper
modules raise it)."""
from __future__ import annotations


class ManifestError(ValueError):
    """A manifest field is wrong; the message names it and says what to fix."""

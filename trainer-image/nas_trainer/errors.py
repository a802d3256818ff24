"""Errors shared by the trainer's modules, importable without torch (a tabular trial
pod never loads torch)."""
from __future__ import annotations


class ArchitectureError(ValueError):
    """The architecture JSON cannot be built: a permanent failure for that architecture."""

"""nas-operator: runs ArchitectureSearch and Trial resources (``kopf run -m nas_operator``)."""

from . import handlers  # noqa: F401  (registers the kopf handlers)

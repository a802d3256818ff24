"""kopf handlers. Importing this package registers them (``kopf run -m nas_operator``)."""

from . import final, indexes, search, startup, trials, workers  # noqa: F401

"""kopf handlers. Importing this package registers them (``kopf run -m nas_operator``).

It also raises the interpreter's recursion limit before kopf reads any object: kopf
decodes each watch event with ``json.loads``, whose depth limit is the recursion limit
(Python 3.11), and an object nested deeper (the API server accepts 10,000 levels) raised
RecursionError inside kopf's watch stream, which ended the whole operator. With the
limit above that, the object is read, and the search handler refuses it by its depth.
"""

import sys

RECURSION_LIMIT = 30_000  # > the API server's own JSON nesting limit (10,000)
if sys.getrecursionlimit() < RECURSION_LIMIT:
    sys.setrecursionlimit(RECURSION_LIMIT)

from . import final, indexes, search, startup, trials, workers  # noqa: E402, F401

"""nas-trainer: search spaces, search strategies, the search loop, the child-network
trainer and the `nas` command of nas-operator.

Importing the package is cheap and torch-free; torch is imported only by the parts that
need it (policy-gradient strategies, child models, the trainer).
"""

__version__ = "0.1.0"

import os as _os

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. Spinning
# threads on a shared CPU (trials side by side, a loaded node) made a 2-thread CPU
# trial 1.7× slower than 1 thread; passive waits made it faster than 1 thread.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

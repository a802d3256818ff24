"""nas-trainer: search spaces, search strategies, the search loop, the child-network
trainer and the `nas` command of nas-operator.

Importing the package is cheap and torch-free; torch is imported only by the parts that
need it (policy-gradient strategies, child models, the trainer).
"""

__version__ = "0.1.0"

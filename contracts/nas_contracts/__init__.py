"""The facts the operator, the controller and the trainer must agree on, written once.

Both images install this package (standard library only); each module is one section of
docs/contracts.md:

- ``api``: section 1, the API group, version, kinds and plurals;
- ``architecture``: section 2, the architecture JSON;
- ``result``: section 3, the result JSON, its one reader, and ``nas-train``'s exit codes;
- ``trial``: section 4, the Trial's name, labels and phases;
- ``volume``: section 5, the volume's layout;
- ``cluster``: section 7, the children's names, labels and env, the controller's exit;
- ``warm_pool``: section 8, the warm worker's assignment and answer.

Section 6 (the canonical forms) is the spaces' own code (``nas_trainer.spaces``).
"""

"""The controller pod's program (`nas-controller`): runs one ArchitectureSearch's search
loop against the Kubernetes API, one Trial object per architecture.

    main.py       entry point, exit codes, signals
    config.py     settings from the environment
    runner.py     one run: lease, fencing epoch, loop, decision
    loop.py       the shared SearchLoop plus adoption of existing Trials (the resume rule)
    executor.py   the loop's Executor: creates/adopts Trials, waits for their results
    informer.py   list + watch that survives 410 Gone and API-server restarts
    trials_api.py Trial names, bodies, create-or-adopt
    lease.py      the coordination.k8s.io Lease `<search>-controller`
    fencing.py    checkpoint/epoch, refusing writes from a replaced controller
    guard.py      the check before every write; the fenced results folder
    retry.py      retrying API calls through transient errors
    status.py     status.controller (progress and the decision)
    events.py     Kubernetes Events on the search
    metrics.py    Prometheus metrics (port 8000)
"""

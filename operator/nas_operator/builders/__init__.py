"""Pure builders: each takes plain dicts (the objects as the API returns them) and
returns the dict of one Kubernetes object. No API calls, no clock, no globals."""

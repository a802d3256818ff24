# The nas-operator image: kopf and the Kubernetes client, no torch.
#   docker build -t ghcr.io/nas-operator/operator:0.1.0 .
# BASE_IMAGE: any image with Python 3.11 and pip (the tests pass a Debian one they make,
# tests/cluster/make-base.sh).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies pinned by operator/requirements.lock (tests/cluster/lock_requirements.py).
COPY contracts/ /src/contracts/
COPY operator/ /src/operator/
RUN pip install --no-deps -r /src/operator/requirements.lock \
    && pip install --no-deps /src/contracts /src/operator \
    && python -c "import nas_operator" \
    && rm -rf /src

# non-root (the chart also sets runAsNonRoot and a read-only root filesystem)
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin nas
USER 10001:10001

EXPOSE 8080 8081
ENTRYPOINT ["kopf", "run", "-m", "nas_operator", "--standalone", "--all-namespaces", \
            "--liveness=http://0.0.0.0:8081/healthz"]

# Two commands matter: `make demo` (a real search on this machine) and `make test`
# (everything the suite needs is installed first, then the whole suite runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE := $(HOME)/.cache/nas-operator
export PIP_CACHE_DIR ?= $(HOME)/.cache/pip

.PHONY: demo test venv binaries tools images unit lint clean-cluster

$(VENV)/.installed: contracts/pyproject.toml operator/pyproject.toml trainer-image/pyproject.toml requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ./contracts -e ./operator -e ./trainer-image -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/nas run examples/nas-bench-graph-cora.yaml --out runs/demo-cora

# Control-plane binaries (kube-apiserver, controller-manager, scheduler, kubectl, etcd) and
# the real node's kubelet and kube-proxy, built from the Go module proxy and cached under ~/.cache/nas-operator.
binaries:
	tests/cluster/build-binaries.sh >/dev/null

# Prometheus (Debian's package) and Helm (built from the Go module proxy), cached.
tools:
	tests/cluster/install-tools.sh >/dev/null

unit: venv
	$(PY) -m pytest tests/unit -q

# The operator and trainer images from the repository's Dockerfiles (podman, on a Debian
# base made here) and the real node's pause image, cached by the hash of their inputs.
images: tools
	tests/cluster/build-images.sh >/dev/null

test: venv binaries tools images
	$(PY) -m pytest -q

clean-cluster:
	$(PY) -m tests.cluster.reap

#!/usr/bin/env bash
# Installs the tools the test suite runs for real besides the control plane:
# Prometheus, the real node's containerd, runc and CNI plugins, the image builders podman
# and debootstrap (Debian's packages), and Helm (built from the Go module proxy at a pinned
# version, cached outside the repository). Idempotent: a second run does nothing.
# Prints the Helm binary folder on stdout (tests put it on PATH).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-3.21.4}"
CACHE_ROOT="${NAS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nas-operator}"
HELM_BIN_DIR="$CACHE_ROOT/helm-$HELM_VERSION/bin"

log() { echo "install-tools: $*" >&2; }

# --- Prometheus: Debian's package, so the version is the distribution's.
if ! command -v prometheus >/dev/null; then
  if [[ $EUID -ne 0 ]]; then
    log "prometheus is not on PATH; install Debian's package: sudo apt-get install -y prometheus"
    exit 1
  fi
  log "installing prometheus (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # The package's service would start a system Prometheus on :9090; tests run their
  # own, so keep the daemon from starting (policy-rc.d 101 = "action forbidden").
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
  fi
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [[ $created_policy == 1 ]]; then rm -f "$policy"; fi
fi

# --- The real node (tests/cluster/real_node.py) and the image builds (build-images.sh):
# containerd, runc and the CNI plugins run pods; podman and debootstrap build the images.
REAL_NODE_PACKAGES=(containerd runc containernetworking-plugins iptables podman debootstrap)
missing=()
for pkg in "${REAL_NODE_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  if [[ $EUID -ne 0 ]]; then
    log "missing Debian packages: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # containerd's package would start a system daemon; the real node runs its own.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ $created_policy == 1 ]]; then rm -f "$policy"; fi
fi

# --- Helm: `go install` of the pinned release into a versioned cache folder.
if [[ ! -x "$HELM_BIN_DIR/helm" ]]; then
  command -v go >/dev/null || { log "Go is required to build helm (https://go.dev/dl)"; exit 1; }
  log "building helm v$HELM_VERSION (takes a few minutes)"
  mkdir -p "$HELM_BIN_DIR"
  GOBIN="$HELM_BIN_DIR" GOTOOLCHAIN=local CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
fi

echo "$HELM_BIN_DIR"

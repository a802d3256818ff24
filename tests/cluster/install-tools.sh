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

# apt-get install of Debian packages without starting their services: prometheus's would
# start a system Prometheus on :9090 and containerd's a system daemon; the tests run their
# own (policy-rc.d 101 = "action forbidden").
apt_install_quietly() {
  if [[ $EUID -ne 0 ]]; then
    log "missing Debian packages: sudo apt-get install -y $*"
    exit 1
  fi
  log "installing $* (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  if [[ $created_policy == 1 ]]; then rm -f "$policy"; fi
}

# --- Prometheus: Debian's package, so the version is the distribution's.
if ! command -v prometheus >/dev/null; then
  apt_install_quietly prometheus
fi

# --- The real node (tests/cluster/real_node.py) and the image builds (build-images.sh):
# containerd, runc and the CNI plugins run pods; podman and debootstrap build the images.
REAL_NODE_PACKAGES=(containerd runc containernetworking-plugins iptables podman debootstrap)
missing=()
for pkg in "${REAL_NODE_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  apt_install_quietly "${missing[@]}"
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

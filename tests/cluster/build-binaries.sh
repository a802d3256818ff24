#!/usr/bin/env bash
# Builds the test control plane from the Go module proxy: kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl (Kubernetes ${K8S_VERSION}) and
# etcd (${ETCD_VERSION}); and the real node's kubelet and kube-proxy from the same
# Kubernetes module (tests/cluster/real_node.py). Binaries are cached outside the repository, keyed by
# version, so a second run builds nothing. Prints the binary folder on stdout.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CACHE_ROOT="${NAS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nas-operator}"
BIN_DIR="$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION/bin"
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)

log() { echo "build-binaries: $*" >&2; }

all_present() {
  for b in "${K8S_BINARIES[@]}" etcd; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
}

if all_present; then
  echo "$BIN_DIR"
  exit 0
fi

command -v go >/dev/null || { log "Go is required (https://go.dev/dl); none on PATH"; exit 1; }
mkdir -p "$BIN_DIR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

# --- Kubernetes: a wrapper module that requires k8s.io/kubernetes and points every
# staging module (which k8s.io/kubernetes replaces with ./staging paths that do not
# exist outside its repository) at the matching published v0.x.y release.
staging_version="v0.${K8S_VERSION#1.}"
mkdir -p "$work/k8s"
cd "$work/k8s"
go mod init nas-operator.test/k8s-binaries >/dev/null 2>&1
kmod_json="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION")"
kmod_file="$(printf '%s' "$kmod_json" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
go_directive="$(grep -m1 '^go ' "$kmod_file")"
{
  echo "module nas-operator.test/k8s-binaries"
  echo
  echo "$go_directive"
  echo
  echo "require k8s.io/kubernetes v$K8S_VERSION"
  echo
  echo "replace ("
  sed -n 's#^\s*\(k8s.io/[a-z0-9.-]*\) => ./staging/.*#\t\1 => \1 '"$staging_version"'#p' "$kmod_file"
  echo ")"
} > go.mod
log "resolving k8s.io/kubernetes v$K8S_VERSION with staging modules at $staging_version"
go mod download k8s.io/kubernetes
# Version stamps: the API server derives its emulation/compatibility version from them.
minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
for b in "${K8S_BINARIES[@]}"; do
  [[ -x "$BIN_DIR/$b" ]] && continue
  log "building $b (first build takes several minutes)"
  go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/$b.tmp" "k8s.io/kubernetes/cmd/$b"
  mv "$BIN_DIR/$b.tmp" "$BIN_DIR/$b"
done

# --- etcd: the server module's own main package.
if [[ ! -x "$BIN_DIR/etcd" ]]; then
  mkdir -p "$work/etcd"
  cd "$work/etcd"
  printf 'module nas-operator.test/etcd-binary\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$ETCD_VERSION" > go.mod
  log "building etcd v$ETCD_VERSION"
  go mod download go.etcd.io/etcd/server/v3
  go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION" -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
fi

all_present || { log "some binaries are missing in $BIN_DIR"; exit 1; }
echo "$BIN_DIR"

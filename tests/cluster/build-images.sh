#!/usr/bin/env bash
# Builds the project's two images from its own Dockerfiles with podman, plus the real
# node's pause image, and caches them as OCI archives outside the repository, keyed by a
# hash of everything that goes into them: a second run with the same inputs builds
# nothing. The bases are made locally (make-base.sh: no registry can be pulled here) and
# passed as BASE_IMAGE; the Dockerfiles' defaults stay the public bases a user pulls.
# Prints the folder holding operator.oci.tar, trainer.oci.tar, pause.oci.tar and
# images.env (their references).
set -euo pipefail

cd "$(dirname "$0")/../.."
REPO="$PWD"
CACHE_ROOT="${NAS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nas-operator}"
TORCH_VERSION="$(sed -n 's/^torch==//p' trainer-image/requirements.lock)"
log() { echo "build-images: $*" >&2; }

inputs() {
  printf '%s\n' Dockerfile trainer-image/Dockerfile tests/cluster/build-images.sh \
    tests/cluster/make-base.sh tests/cluster/pause/pause.go
  git ls-files -co --exclude-standard -- operator trainer-image contracts | grep -v -E '__pycache__|\.egg-info/'
}
hash="$(inputs | sort -u | while read -r f; do [[ -f $f ]] && { printf '%s\0' "$f"; cat "$f"; }; done \
        | sha256sum | cut -c1-16)"
OUT="$CACHE_ROOT/images-$hash"
if [[ -s $OUT/images.env ]]; then
  echo "$OUT"; exit 0
fi

for tool in podman go; do
  command -v $tool >/dev/null || { log "$tool is missing (tests/cluster/install-tools.sh installs it)"; exit 1; }
done
# Debian's podman: crun refuses this kind of machine's hybrid cgroups, runc works; no
# systemd here to manage cgroups; rlimits above 20000 may not be raised.
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs --events-backend file)
# The host's CA bundle is lent to the build's pip: a machine behind a TLS-inspecting proxy
# trusts a CA that the base's bundle lacks (the images themselves keep the base's).
BUILD=(build --network host --ulimit nofile=1024:1024 --ulimit nproc=1000:1000 --layers=false
       --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)

base_dir="$(tests/cluster/make-base.sh "$TORCH_VERSION")"
base_key="$(basename "$base_dir")"
for flavour in python torch; do
  ref="localhost/nas-test-base-$flavour:${base_key#base-}"
  if ! "${PODMAN[@]}" image exists "$ref"; then
    log "importing the $flavour base as $ref"
    "${PODMAN[@]}" import -q --change 'CMD ["/bin/bash"]' "$base_dir/$flavour.tar" "$ref" >/dev/null
  fi
done

work="$CACHE_ROOT/images-work.$$"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
OPERATOR="localhost/nas-operator:$hash"
TRAINER="localhost/nas-trainer:$hash"
PAUSE="localhost/nas-test-pause:$hash"

log "building $OPERATOR"
"${PODMAN[@]}" "${BUILD[@]}" -q -f Dockerfile -t "$OPERATOR" \
  --build-arg "BASE_IMAGE=localhost/nas-test-base-python:${base_key#base-}" . >/dev/null
log "building $TRAINER"
"${PODMAN[@]}" "${BUILD[@]}" -q -f trainer-image/Dockerfile -t "$TRAINER" \
  --build-arg "BASE_IMAGE=localhost/nas-test-base-torch:${base_key#base-}" . >/dev/null

log "building $PAUSE"
mkdir -p "$work/pause"
CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags "-s -w" -o "$work/pause/pause" \
  tests/cluster/pause/pause.go
tar -C "$work/pause" --owner=0 --group=0 -cf "$work/pause.tar" pause
"${PODMAN[@]}" import -q --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535' \
  "$work/pause.tar" "$PAUSE" >/dev/null

# Images of older inputs are large (the trainer's is several GB): keep only this build, and
# drop the others before saving it, so the disk never holds two trainer archives.
for old in "$CACHE_ROOT"/images-*; do
  [[ $old == "$OUT" || $old == "$CACHE_ROOT"/images-work.* ]] && continue
  rm -rf "$old"
done
"${PODMAN[@]}" images --format '{{.Repository}}:{{.Tag}}' \
  | grep -E '^localhost/nas-(operator|trainer|test-pause):' | grep -v ":$hash\$" \
  | xargs -r "${PODMAN[@]}" rmi -f >/dev/null 2>&1 || true

mkdir -p "$work/out"
for pair in "operator=$OPERATOR" "trainer=$TRAINER" "pause=$PAUSE"; do
  name="${pair%%=*}"; ref="${pair#*=}"
  log "saving $ref"
  # Uncompressed: gzip of the trainer's several GB costs minutes of scarce CPU here, and
  # containerd would only decompress it again.
  "${PODMAN[@]}" save -q --format oci-archive --uncompressed -o "$work/out/$name.oci.tar" "$ref"
done
printf 'OPERATOR_IMAGE=%s\nTRAINER_IMAGE=%s\nPAUSE_IMAGE=%s\n' "$OPERATOR" "$TRAINER" "$PAUSE" \
  > "$work/out/images.env"
rm -rf "$OUT"
mv "$work/out" "$OUT"

echo "$OUT"

#!/usr/bin/env bash
# Makes the base images the test build passes as BASE_IMAGE, on a machine that cannot pull
# any (no registry is reachable here): Debian (debootstrap) with Python 3.11 and pip, in
# two flavours, each a rootfs tarball cached outside the repository:
#   python.tar  stands in for python:3.11-slim (the operator image's base)
#   torch.tar   the same plus torch from PyPI (the trainer image's base, as the
#               pytorch/pytorch image carries torch)
# Usage: make-base.sh <torch version>   Prints the folder holding both tarballs.
set -euo pipefail

TORCH_VERSION="${1:?usage: make-base.sh <torch version>}"
SUITE="${DEBIAN_SUITE:-bookworm}"  # bookworm's python3 is 3.11, as python:3.11-slim
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE_ROOT="${NAS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nas-operator}"
key="$(cat "$0" | sha256sum | cut -c1-12)-$SUITE-torch-$TORCH_VERSION"
OUT="$CACHE_ROOT/base-$key"

log() { echo "make-base: $*" >&2; }

if [[ -s $OUT/python.tar && -s $OUT/torch.tar ]]; then
  echo "$OUT"; exit 0
fi
[[ $EUID -eq 0 ]] || { log "debootstrap needs root"; exit 1; }
command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }

work="$CACHE_ROOT/base-work.$$"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work" "$OUT"
root="$work/rootfs"

if [[ ! -s $OUT/python.tar ]]; then
  log "debootstrap $SUITE with python3 (a few minutes)"
  debootstrap --variant=minbase \
    --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
    "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # The public python image's pip installs into the system: Debian's marks its Python as
  # managed by apt (PEP 668), which the image's `pip install` would refuse.
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
         "$root"/usr/share/man "$root"/usr/share/locale
  tar -C "$root" --numeric-owner -cf "$OUT/python.tar.tmp" .
  mv "$OUT/python.tar.tmp" "$OUT/python.tar"
else
  mkdir -p "$root"
  tar -C "$root" -xf "$OUT/python.tar"
fi

# torch with its CUDA libraries from PyPI (the CPU index is not reachable here); pip's
# cache is shared with the virtualenv's install, so a machine that made .venv downloads
# nothing twice. Debian's python3 (3.11) reads /usr/local/lib/python3.11/dist-packages.
log "installing torch==$TORCH_VERSION into the base (large: torch and its CUDA libraries)"
site="$root/usr/local/lib/python3.11/dist-packages"
mkdir -p "$site"
python3 -m pip install -q --no-compile --target "$site" "torch==$TORCH_VERSION"
tar -C "$root" --numeric-owner -cf "$OUT/torch.tar.tmp" .
mv "$OUT/torch.tar.tmp" "$OUT/torch.tar"
echo "$OUT"

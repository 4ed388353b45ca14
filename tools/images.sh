#!/usr/bin/env bash
# `make images`: builds both images with buildah and runs each entrypoint once with podman,
# without a daemon. Each must refuse an empty configuration with a clear error and exit 2,
# running as the non-root user 65532. Not part of `make test` (it needs a container engine:
# `apt-get install podman buildah mmdebstrap runc` on Debian).
#
# Where the registry's python:3.11-slim cannot be pulled, a local stand-in is built once with
# mmdebstrap (Debian bookworm's python3.11, `python` on the PATH as in the official image) and
# tagged like the real one; builds then use it with --pull=never.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base="${BASE:-docker.io/library/python:3.11-slim}"
tag="${TAG:-dev}"
owner="${OWNER:-local}"

for tool in podman buildah; do
  command -v "$tool" >/dev/null || { echo "images: $tool is missing (apt-get install podman buildah mmdebstrap runc)" >&2; exit 1; }
done

if ! podman image exists "$base"; then
  if ! podman pull "$base" >/dev/null 2>&1; then
    command -v mmdebstrap >/dev/null || { echo "images: cannot pull $base and mmdebstrap is missing" >&2; exit 1; }
    echo "images: $base cannot be pulled; building a local stand-in with mmdebstrap" >&2
    mmdebstrap --quiet --variant=minbase --include=python3.11,ca-certificates \
      --customize-hook='mkdir -p "$1/usr/local/bin" && ln -s /usr/bin/python3.11 "$1/usr/local/bin/python"' \
      --customize-hook='rm -rf "$1/var/lib/apt/lists"/* "$1/var/cache/apt"/*' \
      bookworm - | podman import --change 'CMD ["python3"]' - "$base" >/dev/null
  fi
fi

status=0
for part in event-forwarder annotator; do
  image="ghcr.io/$owner/doks-floating-ip-$part:$tag"
  buildah build --quiet --isolation=chroot --pull=never --build-arg "BASE=$base" \
    -f "$here/in-cluster/$part.Dockerfile" -t "$image" "$here/in-cluster" >/dev/null
  user="$(podman image inspect --format '{{.Config.User}}' "$image")"
  set +e
  # Limits below the defaults podman asks for: raising one needs CAP_SYS_RESOURCE, which some
  # sandboxes (and CI VMs) do not grant even to root; lowering never does.
  out="$(podman run --rm --runtime runc --network none --read-only \
    --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$image" 2>&1)"
  code=$?
  set -e
  first="$(printf '%s\n' "$out" | head -1 | cut -c1-160)"
  if [[ $code -eq 2 && $user == "65532:65532" ]]; then
    echo "ok    $image: user $user, exit 2 without configuration: $first"
  else
    echo "FAIL  $image: user $user, exit $code (expected 65532:65532 and 2): $first"
    status=1
  fi
done
exit $status

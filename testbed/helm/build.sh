#!/usr/bin/env bash
# Builds the helm CLI from its Go module into a cache outside the work tree, keyed by version
# and by the hash of go.mod/go.sum/main.go, so only the first run on a machine pays.
# Prints the path of the binary. Honours HELM_BIN when it names an executable: nothing is built.
set -euo pipefail

if [[ -n "${HELM_BIN:-}" && -x "$HELM_BIN" ]]; then
  echo "$HELM_BIN"
  exit 0
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(grep -Eo "helm.sh/helm/v4 v[0-9.]+" "$here/go.mod" | head -1 | cut -d" " -f2)"
key="$(cat "$here/go.mod" "$here/go.sum" "$here"/cmd/helm/main.go | sha256sum | cut -c1-12)"
# shellcheck source=../go_build.sh
source "$here/../go_build.sh"
out="$cache_root/helm/$version-$key"

if [[ -x "$out/helm" ]]; then
  echo "$out/helm"
  exit 0
fi

begin_build
(
  cd "$here"
  export CGO_ENABLED=0 GOFLAGS=-mod=mod
  go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
    -o "$partial/helm" ./cmd/helm
) >&2
publish helm
echo "built helm $version in $(( $(date +%s) - start ))s" >&2
echo "$out/helm"

#!/usr/bin/env bash
# Builds kube-proxy from its Go module into a cache outside the work tree, keyed by version and
# by the hash of this folder's go.mod/go.sum/main.go, so only the first run on a machine pays.
# A module of its own (not the control plane's): adding kube-proxy leaves the apiserver's cache
# key untouched. Prints the folder holding the binary.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(grep -Eo "k8s.io/kubernetes v[0-9.]+" "$here/go.mod" | head -1 | cut -d" " -f2)"
key="$(cat "$here/go.mod" "$here/go.sum" "$here"/cmd/*/main.go | sha256sum | cut -c1-12)"
# shellcheck source=../go_build.sh
source "$here/../go_build.sh"
out="$cache_root/dataplane/$version-$key"

if [[ -x "$out/kube-proxy" ]]; then
  echo "$out"
  exit 0
fi

begin_build
(
  cd "$here"
  export CGO_ENABLED=0 GOFLAGS=-mod=mod
  go build -trimpath -ldflags "$(k8s_ldflags "$version")" -o "$partial/kube-proxy" ./cmd/kube-proxy
) >&2
publish kube-proxy
echo "built kube-proxy $version in $(( $(date +%s) - start ))s" >&2
echo "$out"

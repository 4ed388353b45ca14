#!/usr/bin/env bash
# Builds kube-apiserver and etcd from their Go modules into a cache outside the work tree,
# keyed by version and by the hash of go.mod/go.sum, so only the first run on a machine pays.
# Prints the folder holding the binaries (kubectl too, at the same version). Honours KUBEBUILDER_ASSETS (envtest's convention):
# when it names a folder with both binaries, nothing is built.
set -euo pipefail

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(grep -Eo "k8s.io/kubernetes v[0-9.]+" "$here/go.mod" | head -1 | cut -d" " -f2)"
key="$(cat "$here/go.mod" "$here/go.sum" "$here"/cmd/*/main.go | sha256sum | cut -c1-12)"
# shellcheck source=../go_build.sh
source "$here/../go_build.sh"
out="$cache_root/controlplane/$version-$key"

if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -x "$out/kubectl" ]]; then
  echo "$out"
  exit 0
fi

begin_build
ldflags="$(k8s_ldflags "$version")"
(
  cd "$here"
  export CGO_ENABLED=0 GOFLAGS=-mod=mod
  go build -trimpath -ldflags "$ldflags" -o "$partial/kube-apiserver" ./cmd/kube-apiserver
  go build -trimpath -ldflags "-s -w" -o "$partial/etcd" ./cmd/etcd
  go build -trimpath -ldflags "$ldflags" -o "$partial/kubectl" ./cmd/kubectl
) >&2
publish kubectl
echo "built kube-apiserver and kubectl $version and etcd in $(( $(date +%s) - start ))s" >&2
echo "$out"

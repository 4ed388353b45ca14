# Sourced by each testbed/*/build.sh: the cache a Go-built test binary goes to, outside the
# work tree, and a build that publishes at once. Two worktrees (or CI and a developer) may
# build at once: each builds in a folder of its own; the first to finish publishes, the
# other's result is identical and is dropped.
cache_root="${FLOATING_IP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/doks-floating-ip}"

# With $out set: a private build folder $partial (removed on exit), and the start time.
begin_build() {
  mkdir -p "$(dirname "$out")"
  partial="$(mktemp -d "$out.partial.XXXXXX")"
  trap 'rm -rf "$partial"' EXIT
  start=$(date +%s)
}

# $partial becomes $out unless another build published first ($1: a file it must hold).
publish() {
  if [[ ! -x "$out/$1" ]]; then
    rm -rf "$out" && mv "$partial" "$out"
  fi
}

# The linker flags that make a Kubernetes binary report its version ($1, v1.x.y).
k8s_ldflags() {
  local minor="${1#v1.}"
  minor="${minor%%.*}"
  echo "-s -w -X k8s.io/component-base/version.gitVersion=$1 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
}

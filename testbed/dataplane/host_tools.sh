#!/usr/bin/env bash
# Installs what the data-path tests drive (ip, nft, iptables, conntrack) where this machine
# allows it: as root with apt. Anywhere else it says what is missing and carries on; the tests
# then skip with that reason (and fail under CI=true, where a skip would hide the data path).
set -euo pipefail

missing=()
for tool in ip nft iptables conntrack; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

packages="iproute2 nftables iptables conntrack"
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "data path: ${missing[*]} missing and no root apt-get here; install: $packages" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends $packages >&2 \
  || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends $packages >&2; }

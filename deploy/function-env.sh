#!/bin/sh
# Prints the two lines the reconcile function's .env needs to call back into the cluster:
#   KUBE_API_URL and KUBE_CA_DATA
# from the cluster your kubeconfig points at. Neither is a credential: the function holds no
# cluster token; the event forwarder mints a 10-minute one and sends it with each event.
# Extra arguments go to kubectl (--context, ...):
#   deploy/function-env.sh >> .env
# Environment: KUBECTL (default kubectl).
set -eu

kubectl="${KUBECTL:-kubectl}"

cluster() {
  "$kubectl" "$@" config view --minify --raw -o "jsonpath={.clusters[0].cluster.$field}"
}

field=server
server="$(cluster "$@")"
if [ -z "$server" ]; then
  echo "function-env: no current cluster in the kubeconfig" >&2
  exit 1
fi
field=certificate-authority-data
ca_data="$(cluster "$@")"
if [ -z "$ca_data" ]; then
  field=certificate-authority
  ca_file="$(cluster "$@")"
  if [ -n "$ca_file" ]; then
    ca_data="$(base64 < "$ca_file" | tr -d '\n')"
  fi
fi

printf 'KUBE_API_URL=%s\nKUBE_CA_DATA=%s\n' "$server" "$ca_data"

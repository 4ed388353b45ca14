#!/bin/sh
# Prints the three lines the reconcile function's .env needs to call back into the cluster:
#   KUBE_API_URL, KUBE_CA_DATA and KUBE_TOKEN
# for the ServiceAccount the kustomize base creates (floating-ip/floating-ip-function), from
# the cluster your kubeconfig points at. Extra arguments go to kubectl (--context, ...):
#   deploy/function-env.sh >> .env
# Environment: KUBECTL (default kubectl), NAMESPACE (floating-ip), SERVICE_ACCOUNT
# (floating-ip-function), TOKEN_DURATION (8760h; only when the long-lived token Secret has
# no token, e.g. without a token controller).
set -eu

kubectl="${KUBECTL:-kubectl}"
namespace="${NAMESPACE:-floating-ip}"
account="${SERVICE_ACCOUNT:-floating-ip-function}"
duration="${TOKEN_DURATION:-8760h}"

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

# The long-lived token Kubernetes keeps in the base's Secret; failing that, a bound token.
token="$("$kubectl" "$@" -n "$namespace" get secret "$account-token" \
  -o 'jsonpath={.data.token}' 2>/dev/null | base64 -d 2>/dev/null || true)"
if [ -z "$token" ]; then
  echo "function-env: Secret $namespace/$account-token has no token;" \
    "issuing one valid for $duration (renew it before then)" >&2
  token="$("$kubectl" "$@" -n "$namespace" create token "$account" --duration "$duration")"
fi

printf 'KUBE_API_URL=%s\nKUBE_CA_DATA=%s\nKUBE_TOKEN=%s\n' "$server" "$ca_data" "$token"

#!/usr/bin/env bash
# Readiness gate for resources an operator creates at run time: returns once every named CRD
# exists and is Established (and, if given, a custom resource reports the wanted status), or
# fails after TIMEOUT with what was missing. Runs on the first control plane with admin.conf.
set -euo pipefail

: "${CRDS:?}" "${TIMEOUT:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf

for crd in $CRDS; do
  # --for=create (kubectl >= 1.31) waits for an object that does not exist yet.
  if ! kubectl wait --for=create "crd/${crd}" --timeout="$TIMEOUT" >/dev/null; then
    echo "dsaas: CRD ${crd} did not appear within ${TIMEOUT}; check the operator's logs" >&2
    exit 1
  fi
  kubectl wait --for=condition=Established "crd/${crd}" --timeout="$TIMEOUT" >/dev/null
done

if [ -n "${STATUS_RESOURCE:-}" ]; then
  : "${STATUS_JSONPATH:?}" "${STATUS_VALUE:?}"
  if ! kubectl wait --for="jsonpath=${STATUS_JSONPATH}=${STATUS_VALUE}" \
    "$STATUS_RESOURCE" --timeout="$TIMEOUT" >/dev/null; then
    echo "dsaas: ${STATUS_RESOURCE} did not reach ${STATUS_VALUE} within ${TIMEOUT}" >&2
    exit 1
  fi
fi
echo "dsaas: ready: ${CRDS}${STATUS_RESOURCE:+ and ${STATUS_RESOURCE}}"

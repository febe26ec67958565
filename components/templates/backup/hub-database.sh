#!/usr/bin/env bash
# Dumps the hub's SQLite database with SQLite's online backup API, inside the running hub pod (its
# database is on a ReadWriteOnce volume that no other pod can mount while the hub runs): the hub
# image's own Python runs sqlite_backup.py over `kubectl exec` and streams the copy back.
# Runs in the kubectl image. Environment: HUB_NAMESPACE, HUB_SELECTOR, HUB_CONTAINER, DATABASE, SCRIPT, OUT.
set -euo pipefail

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
pod="$(kubectl get pods -n "${HUB_NAMESPACE}" -l "${HUB_SELECTOR}" --field-selector=status.phase=Running \
  -o jsonpath='{.items[0].metadata.name}')"
if [ -z "${pod}" ]; then
  echo "no running hub pod (${HUB_SELECTOR}) in namespace ${HUB_NAMESPACE}: nothing to back up" >&2
  exit 1
fi
kubectl exec -i -n "${HUB_NAMESPACE}" -c "${HUB_CONTAINER}" "${pod}" -- python3 - "${DATABASE}" \
  <"${SCRIPT}" >"${OUT}/payload.tmp"
if [ "$(head -c 15 "${OUT}/payload.tmp")" != "SQLite format 3" ]; then
  echo "the copy from ${pod} is not an SQLite database" >&2
  exit 1
fi
mv "${OUT}/payload.tmp" "${OUT}/payload"
printf '%s\n' "${stamp}" >"${OUT}/stamp"
echo "hub database ${stamp} from ${pod}: $(wc -c <"${OUT}/payload") bytes"

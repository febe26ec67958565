#!/usr/bin/env bash
# The volume inventory (contract "dsaas-inventory/1"): raw `kubectl get -o json` Lists of the hub's
# claims, every PV and Trident's volumes, backends and backend configs, in one JSON envelope. No
# joining here: the restore planner joins, so a change in Trident's objects never breaks this job.
# Runs in the kubectl image (bash, jq). Environment: CLUSTER, HUB_NAMESPACE, TRIDENT_NAMESPACE, OUT.
set -euo pipefail

now="$(date -u +%s)"
written="$(date -u -d "@${now}" +%Y-%m-%dT%H:%M:%SZ)"
stamp="$(date -u -d "@${now}" +%Y%m%dT%H%M%SZ)"
lists="$(mktemp -d)"
trap 'rm -rf "${lists}"' EXIT

kubectl get persistentvolumeclaims -n "${HUB_NAMESPACE}" -o json >"${lists}/pvc.json"
kubectl get persistentvolumes -o json >"${lists}/pv.json"
kubectl get tridentvolumes.trident.netapp.io -n "${TRIDENT_NAMESPACE}" -o json >"${lists}/tvol.json"
kubectl get tridentbackends.trident.netapp.io -n "${TRIDENT_NAMESPACE}" -o json >"${lists}/tbe.json"
kubectl get tridentbackendconfigs.trident.netapp.io -n "${TRIDENT_NAMESPACE}" -o json >"${lists}/tbc.json"

jq -n \
  --arg cluster "${CLUSTER}" \
  --arg written "${written}" \
  --slurpfile pvc "${lists}/pvc.json" \
  --slurpfile pv "${lists}/pv.json" \
  --slurpfile tvol "${lists}/tvol.json" \
  --slurpfile tbe "${lists}/tbe.json" \
  --slurpfile tbc "${lists}/tbc.json" \
  '{format: "dsaas-inventory/1", cluster: $cluster, written: $written,
    persistentVolumeClaims: $pvc[0], persistentVolumes: $pv[0], tridentVolumes: $tvol[0],
    tridentBackends: $tbe[0], tridentBackendConfigs: $tbc[0]}' >"${OUT}/payload.tmp"
mv "${OUT}/payload.tmp" "${OUT}/payload"
printf '%s\n' "${stamp}" >"${OUT}/stamp"
echo "inventory ${stamp}: $(jq '.persistentVolumeClaims.items | length' "${OUT}/payload") claims"

#!/usr/bin/env bash
# On the first control plane, before a node's VM is deleted or replaced: drain it (respecting
# PodDisruptionBudgets) and delete it from the cluster. Idempotent: a node already gone is fine.
# A node whose host is already gone (Ready not True for GONE_AFTER_SECONDS) cannot stop its pods, so a drain
# would wait its whole timeout and fail `pulumi up`: it is deleted without one, and its pods are made again
# elsewhere by their controllers (user servers: by the hub, when their users start them again).
set -euo pipefail

: "${NODE_NAME:?}" "${GONE_AFTER_SECONDS:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf
ready_condition='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastTransitionTime}'
if ! ready="$(kubectl get node "$NODE_NAME" -o "jsonpath=${ready_condition}" 2>/dev/null)"; then
  echo "dsaas: ${NODE_NAME} is not in the cluster"
  exit 0
fi
read -r status since <<<"$ready"
if [ "${status:-Unknown}" != True ] && [ -n "${since:-}" ] &&
  [ "$(($(date -u +%s) - $(date -u -d "$since" +%s)))" -ge "$GONE_AFTER_SECONDS" ]; then
  echo "dsaas: ${NODE_NAME} has not been Ready since ${since} (${status}): its host is gone or its kubelet down," \
    "so it is removed without a drain; its pods are made again on other nodes"
  kubectl delete node "$NODE_NAME" --wait=true
  exit 0
fi
kubectl cordon "$NODE_NAME"
# --force: KubeSpawner runs notebook servers as bare pods, which drain refuses without it. They
# stop (the hub sees them gone; homes are volumes and stay); users start again on another node.
kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --force --timeout=10m
kubectl delete node "$NODE_NAME" --wait=true
echo "dsaas: ${NODE_NAME} drained and removed"

#!/usr/bin/env bash
# On the first control plane, before a node's VM is deleted or replaced: drain it (respecting
# PodDisruptionBudgets) and delete it from the cluster. Idempotent: a node already gone is fine.
set -euo pipefail

: "${NODE_NAME:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf
if ! kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  echo "dsaas: ${NODE_NAME} is not in the cluster"
  exit 0
fi
kubectl cordon "$NODE_NAME"
# --force: KubeSpawner runs notebook servers as bare pods, which drain refuses without it. They
# stop (the hub sees them gone; homes are volumes and stay); users start again on another node.
kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --force --timeout=10m
kubectl delete node "$NODE_NAME" --wait=true
echo "dsaas: ${NODE_NAME} drained and removed"

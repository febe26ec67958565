#!/usr/bin/env bash
# On the first control plane, around a node's Kubernetes upgrade (upgrade-node.sh runs on the node itself):
# PHASE=drain cordons and drains it (respecting PodDisruptionBudgets) within DRAIN_TIMEOUT and names the pods
# that block; PHASE=release uncordons it and waits until it is Ready at the new version.
# Idempotent: a node whose kubelet already runs the version and takes pods is left alone.
set -euo pipefail

: "${NODE_NAME:?}" "${KUBERNETES_VERSION:?}" "${PHASE:?}" "${DRAIN_TIMEOUT:?}" "${READY_TIMEOUT:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf

kubelet_version="$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.kubeletVersion}')"
unschedulable="$(kubectl get node "$NODE_NAME" -o jsonpath='{.spec.unschedulable}')"

case "$PHASE" in
  drain)
    if [ "$kubelet_version" = "v${KUBERNETES_VERSION}" ] && [ "$unschedulable" != true ]; then
      echo "dsaas: ${NODE_NAME} already runs Kubernetes ${KUBERNETES_VERSION}; not drained"
      exit 0
    fi
    kubectl cordon "$NODE_NAME"
    # --force: KubeSpawner runs notebook servers as bare pods, which drain refuses without it; users start
    # again on another node and their homes (volumes) stay.
    if ! kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --force --timeout="$DRAIN_TIMEOUT"; then
      blocking="$(kubectl get pods --all-namespaces --field-selector "spec.nodeName=${NODE_NAME}" \
        -o jsonpath='{range .items[?(@.metadata.ownerReferences[0].kind!="DaemonSet")]}{.metadata.namespace}/{.metadata.name} {end}')"
      echo "dsaas: draining ${NODE_NAME} took longer than ${DRAIN_TIMEOUT}; still running there: ${blocking:-none}." >&2
      echo "dsaas: a PodDisruptionBudget usually blocks them: check it, then run pulumi up again (the upgrade resumes)" >&2
      exit 1
    fi
    echo "dsaas: ${NODE_NAME} drained"
    ;;
  release)
    if [ "$kubelet_version" != "v${KUBERNETES_VERSION}" ]; then
      # The kubelet reports its new version once it has restarted: wait for that before taking pods again.
      for _ in $(seq 1 60); do
        sleep 5
        kubelet_version="$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.kubeletVersion}')"
        [ "$kubelet_version" = "v${KUBERNETES_VERSION}" ] && break
      done
      if [ "$kubelet_version" != "v${KUBERNETES_VERSION}" ]; then
        echo "dsaas: ${NODE_NAME}'s kubelet reports ${kubelet_version}, not v${KUBERNETES_VERSION}; left cordoned" >&2
        exit 1
      fi
    fi
    kubectl uncordon "$NODE_NAME"
    kubectl wait --for=condition=Ready "node/${NODE_NAME}" --timeout="$READY_TIMEOUT"
    echo "dsaas: ${NODE_NAME} is Ready at Kubernetes ${KUBERNETES_VERSION}"
    ;;
  *)
    echo "dsaas: PHASE must be drain or release, not '${PHASE}'" >&2
    exit 1
    ;;
esac

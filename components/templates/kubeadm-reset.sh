#!/usr/bin/env bash
# Runs on a control-plane node before its VM is deleted: kubeadm reset removes its etcd member,
# so the remaining members keep quorum arithmetic right. Idempotent: nothing to do if not joined.
set -euo pipefail

if [ -e /etc/kubernetes/manifests/etcd.yaml ] || [ -e /etc/kubernetes/kubelet.conf ]; then
  kubeadm reset --force --cleanup-tmp-dir
  rm -f /etc/kubernetes/manifests/kube-vip.yaml
fi

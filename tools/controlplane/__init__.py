"""A real Kubernetes control plane for the test suite, built from Kubernetes' own Go modules.

`python -m tools.controlplane build` compiles etcd, kube-apiserver, kube-controller-manager and
kube-scheduler from the modules pinned in `tools/controlplane/go.mod` (one `k8s-<minor>.mod` per other
supported minor) into a per-machine cache; `tools.controlplane.cluster.ControlPlane` starts them on
127.0.0.1 with a throwaway PKI, and `tools.controlplane.nodes.NodeRunner` plays the kubelet for nodes
shaped like a stack's workers. See docs/testing.md, "The control plane".
"""

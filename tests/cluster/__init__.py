"""The real Kubernetes test control plane: etcd, kube-apiserver, controller-manager and
scheduler on loopback, plus a test node agent that plays kubelet (see DESIGN.md,
"Tests run against real parts")."""

//go:build tools

// Package tools keeps the control-plane and node binaries in this module's
// graph so `go mod tidy` leaves their dependencies alone. The lab runs a real
// cluster from them: kube-apiserver, kube-controller-manager, kube-scheduler,
// a kubelet and a kube-proxy per node, and kubectl.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)

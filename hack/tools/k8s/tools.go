//go:build tools

// Package tools keeps the control-plane binaries in this module's graph so
// `go mod tidy` leaves their dependencies alone.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)

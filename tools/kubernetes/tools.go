//go:build tools

// Package tools pins the Kubernetes programs the local test stack and the
// single-node cluster build, all from k8s.io/kubernetes with its staging
// modules resolved from the module proxy instead of ./staging. tools/build.sh
// builds the missing ones in one `go build`, so shared packages compile once.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)

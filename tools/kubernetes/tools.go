//go:build tools

// Package tools pins the Kubernetes programs the local test stack builds:
// kube-apiserver and kubectl, from k8s.io/kubernetes with its staging
// modules resolved from the module proxy instead of ./staging.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)

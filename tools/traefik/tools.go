//go:build tools

// Package tools pins the Traefik binary the local test stack runs.
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"

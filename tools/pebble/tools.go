//go:build tools

// Package tools pins Pebble and pebble-challtestsrv, the ACME test CA and its DNS server, which the
// local test stack runs. Both come from one module version and are built in one `go build`.
package tools

import (
	_ "github.com/letsencrypt/pebble/v2/cmd/pebble"
	_ "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv"
)

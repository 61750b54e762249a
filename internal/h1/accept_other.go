//go:build !linux

package h1

import "net"

// fastListener: net's connections everywhere but Linux.
func fastListener(l net.Listener) net.Listener { return l }

//go:build !linux

package h1

import "net"

// fastListener: net's connections everywhere but Linux.
func fastListener(l net.Listener) net.Listener { return l }

// sockConn is Linux-only; never made here.
type sockConn struct{ net.Conn }

func (*sockConn) WaitRead() {}

//go:build !linux

package proxy

import (
	"net/netip"
	"time"
)

// dialRaw is Linux-only; elsewhere net.Dialer does the work.
func dialRaw(netip.AddrPort, string, time.Duration, func(*pconn)) (*pconn, error) {
	return nil, errNeedNet
}

// setNoDelay: every connection comes from net, which sets TCP_NODELAY.
func (c *pconn) setNoDelay() { c.nodelay = true }

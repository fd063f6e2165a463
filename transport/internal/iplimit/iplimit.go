// Package iplimit counts a transport's open connections per remote IP
// address, so that one address cannot hold all of a server's file
// descriptors.
package iplimit

import (
	"net"
	"net/netip"
	"sync"
)

// DefaultMax is the number of connections one IP address may hold open
// when a transport's option is zero: enough for the devices behind one
// NAT of a household or a small office, few enough that one address
// cannot take a meaningful share of the process's file descriptors.
const DefaultMax = 64

// Limiter counts open connections per IP address. The zero value is not
// usable; call New.
type Limiter struct {
	max int // <= 0: no limit
	mu  sync.Mutex
	n   map[netip.Addr]int
}

// New returns a Limiter allowing max connections per address: DefaultMax
// for 0, no limit for a negative max.
func New(max int) *Limiter {
	if max == 0 {
		max = DefaultMax
	}
	return &Limiter{max: max, n: make(map[netip.Addr]int)}
}

// Acquire counts one more connection from addr (a "host:port" or an IP) and
// reports whether it is allowed; when it is, the caller calls the returned
// release exactly once when the connection ends. An address that does not
// parse (a Unix socket, say) is not limited.
func (l *Limiter) Acquire(addr string) (release func(), ok bool) {
	ip, ok := ipOf(addr)
	if !ok || l.max < 0 {
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip] >= l.max {
		return nil, false
	}
	l.n[ip]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.n[ip]--; l.n[ip] <= 0 {
				delete(l.n, ip) // keep the map as small as the set of addresses
			}
		})
	}, true
}

func ipOf(addr string) (netip.Addr, bool) {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	// An IPv4 client of a dual-stack listener counts as the same address
	// whichever way it arrives; zones do not make another host.
	return ip.Unmap().WithZone(""), true
}

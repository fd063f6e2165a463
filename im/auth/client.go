package auth

import (
	"context"
	"net/netip"

	"github.com/imserver/imserver/im/auth/account"
)

// WithClientAddr returns ctx carrying the network address of the client a
// Register or Login call is made for, which the per-address and per-subnet
// limits count. The HTTP API sets it from the connection's remote address;
// behind a reverse proxy that is the proxy's, so the proxy must do its own
// limiting, or the host must pass the client's address it trusts. It is
// account.WithClientAddr.
func WithClientAddr(ctx context.Context, addr netip.Addr) context.Context {
	return account.WithClientAddr(ctx, addr)
}

// ClientAddr returns the address WithClientAddr put in ctx.
func ClientAddr(ctx context.Context) (netip.Addr, bool) { return account.ClientAddr(ctx) }

// subnetOf is the network an address is counted with: /24 for IPv4, /64 for
// IPv6, the blocks one party usually holds.
func subnetOf(addr netip.Addr) netip.Prefix {
	bits := 64
	if addr.Is4() {
		bits = 24
	}
	p, _ := addr.Prefix(bits)
	return p
}

// RetryAfter reports how many whole seconds (at least 1) a client refused by
// a login limit should wait before trying again, for an HTTP Retry-After
// header, or false if err is not such a refusal. It is account.RetryAfter.
func RetryAfter(err error) (int, bool) { return account.RetryAfter(err) }

package auth

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"time"

	"github.com/imserver/imserver/im"
)

type clientAddrKey struct{}

// WithClientAddr returns ctx carrying the network address of the client a
// Register or Login call is made for, which the per-address and per-subnet
// limits count. The HTTP API sets it from the connection's remote address;
// behind a reverse proxy that is the proxy's, so the proxy must do its own
// limiting, or the host must pass the client's address it trusts.
func WithClientAddr(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr.Unmap())
}

// ClientAddr returns the address WithClientAddr put in ctx.
func ClientAddr(ctx context.Context) (netip.Addr, bool) {
	addr, ok := ctx.Value(clientAddrKey{}).(netip.Addr)
	return addr, ok && addr.IsValid()
}

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

// throttledError is a refusal for too many attempts, with how long to wait.
type throttledError struct {
	err  *im.Error
	wait time.Duration
}

func (e *throttledError) Error() string { return e.err.Error() }
func (e *throttledError) Unwrap() error { return e.err }

func throttled(msg string, wait time.Duration) error {
	return &throttledError{
		err:  &im.Error{Code: im.CodeRateLimited, Msg: msg, Err: im.ErrRateLimited},
		wait: wait,
	}
}

// RetryAfter reports how many whole seconds (at least 1) a client refused by
// a login limit should wait before trying again, for an HTTP Retry-After
// header, or false if err is not such a refusal.
func RetryAfter(err error) (int, bool) {
	var t *throttledError
	if !errors.As(err, &t) {
		return 0, false
	}
	return max(1, int(math.Ceil(t.wait.Seconds()))), true
}

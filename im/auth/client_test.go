package auth

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
)

// IPv6 clients are counted per /64 as well as per address, and an
// IPv4-mapped address counts as the IPv4 one.
func TestClientLimitsIPv6Subnet(t *testing.T) {
	a := newTestAccounts(t, newTestStore(t), &fakeClock{t: testEpoch}, 5, time.Hour)
	a.client = newLimiter(2, time.Hour, DefaultMaxTracked)
	a.subnet = newLimiter(3, time.Hour, DefaultMaxTracked)
	at := func(s string) context.Context {
		return WithClientAddr(context.Background(), netip.MustParseAddr(s))
	}
	login := func(ctx context.Context) error {
		_, err := a.Login(ctx, "nobody", "whatever1")
		return err
	}
	require.ErrorIs(t, login(at("2001:db8::1")), im.ErrUnauthenticated)
	require.ErrorIs(t, login(at("2001:db8::1")), im.ErrUnauthenticated)
	err := login(at("2001:db8::1"))
	require.ErrorIs(t, err, im.ErrRateLimited)
	secs, ok := RetryAfter(err)
	require.True(t, ok)
	require.Equal(t, 3600, secs)
	require.ErrorIs(t, login(at("2001:db8::2")), im.ErrUnauthenticated, "its own address count")
	require.ErrorIs(t, login(at("2001:db8::3")), im.ErrRateLimited, "the /64's 3 are used up")
	require.ErrorIs(t, login(at("2001:db8:0:1::1")), im.ErrUnauthenticated, "another /64")

	require.ErrorIs(t, login(at("192.0.2.1")), im.ErrUnauthenticated)
	require.ErrorIs(t, login(at("::ffff:192.0.2.1")), im.ErrUnauthenticated)
	require.ErrorIs(t, login(at("192.0.2.1")), im.ErrRateLimited, "mapped and plain are one address")

	// Other errors carry no wait.
	_, ok = RetryAfter(badCredentials())
	require.False(t, ok)
}

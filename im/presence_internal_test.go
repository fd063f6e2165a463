package im

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// presenceLog collects what a tracker notifies.
type presenceLog struct {
	mu  sync.Mutex
	got []Presence
}

func (l *presenceLog) add(p Presence) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, p)
}

func (l *presenceLog) take() []Presence {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.got
	l.got = nil
	return out
}

func TestPresenceTrackerDebounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace = 5 * time.Second
		var log presenceLog
		p := newLocalPresence(grace, log.add)
		defer p.close()
		ios := PresenceDevice{Platform: "iOS", Transport: "tcp"}
		web := PresenceDevice{Platform: "web", Transport: "websocket"}

		p.connected("bob", "s1", ios)
		got := log.take()
		require.Len(t, got, 1)
		require.True(t, got[0].Online)
		require.Equal(t, []PresenceDevice{ios}, got[0].Devices)

		// A second device is pushed; the same details again are not.
		p.connected("bob", "s2", web)
		p.connected("bob", "s2", web)
		got = log.take()
		require.Len(t, got, 1)
		require.Equal(t, []PresenceDevice{ios, web}, got[0].Devices)
		p.disconnected("bob", "s2", time.Now())
		require.Equal(t, []PresenceDevice{ios}, log.take()[0].Devices)

		// The last session ends and a new one comes within the grace:
		// nothing to tell, not even when the timer would have fired.
		p.disconnected("bob", "s1", time.Now())
		time.Sleep(grace - time.Millisecond)
		synctest.Wait()
		require.Empty(t, log.take())
		require.True(t, p.status("bob").Online)
		p.connected("bob", "s3", ios)
		time.Sleep(2 * grace)
		synctest.Wait()
		require.Empty(t, log.take())

		// Gone for good: offline exactly grace later, last seen when
		// the session ended.
		left := time.Now()
		p.disconnected("bob", "s3", left)
		time.Sleep(grace - time.Nanosecond)
		synctest.Wait()
		require.Empty(t, log.take())
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		got = log.take()
		require.Len(t, got, 1)
		require.False(t, got[0].Online)
		require.Empty(t, got[0].Devices)
		require.True(t, got[0].LastSeen.Equal(left))
		st := p.status("bob")
		require.False(t, st.Online)
		require.True(t, st.LastSeen.Equal(left))
		require.GreaterOrEqual(t, st.Version, got[0].Version)
		require.Zero(t, p.online())

		// An unknown session's end changes nothing; close stops a
		// pending grace.
		p.disconnected("bob", "nope", time.Now())
		p.connected("carol", "s4", ios)
		p.disconnected("carol", "s4", time.Now())
		log.take()
		p.close()
		time.Sleep(2 * grace)
		synctest.Wait()
		require.Empty(t, log.take())
	})
}

func TestPresenceTrackerNoGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log presenceLog
		p := newLocalPresence(0, log.add)
		defer p.close()
		p.connected("bob", "s1", PresenceDevice{})
		p.disconnected("bob", "s1", time.Now())
		got := log.take()
		require.Len(t, got, 2)
		require.True(t, got[0].Online)
		require.False(t, got[1].Online)
		require.Less(t, got[0].Version, got[1].Version)
	})
}

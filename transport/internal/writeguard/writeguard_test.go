package writeguard

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

type counts struct{ setups, aborts atomic.Int32 }

func newGuard(c *counts, setupErr error) *Guard {
	return &Guard{
		Setup: func(context.Context) error { c.setups.Add(1); return setupErr },
		Abort: func(context.Context) { c.aborts.Add(1) },
	}
}

func TestSetupOncePerContext(t *testing.T) {
	var c counts
	g := newGuard(&c, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 3 {
		require.NoError(t, g.Begin(ctx))
		g.End()
	}
	require.Equal(t, int32(1), c.setups.Load())
	require.NoError(t, g.Begin(context.Background()))
	g.End()
	require.Equal(t, int32(2), c.setups.Load(), "a new context is set up")
}

// The hooks run on goroutines of context.AfterFunc's; synctest.Wait lets
// each of them finish before the test looks, without guessing how long.
func TestAbortOnlyDuringAWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c counts
		g := newGuard(&c, nil)

		between, cancel := context.WithCancel(context.Background())
		require.NoError(t, g.Begin(between))
		g.End()
		cancel()
		synctest.Wait()
		require.False(t, g.Holds(), "an ended context is forgotten")
		require.Zero(t, c.aborts.Load(), "a context ending between writes aborts nothing")

		during, cancel := context.WithCancel(context.Background())
		require.NoError(t, g.Begin(during))
		cancel()
		synctest.Wait()
		require.Equal(t, int32(1), c.aborts.Load(), "a context ending during a write aborts it")
		g.End()

		// A hook of an earlier context never aborts a later write.
		old, cancelOld := context.WithCancel(context.Background())
		require.NoError(t, g.Begin(old))
		g.End()
		require.NoError(t, g.Begin(context.Background()))
		cancelOld()
		synctest.Wait()
		g.End()
		require.Equal(t, int32(1), c.aborts.Load())
	})
}

func TestBeginRefuses(t *testing.T) {
	var c counts
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, newGuard(&c, nil).Begin(ended), context.Canceled)

	errSetup := errors.New("setup failed")
	g := newGuard(&c, errSetup)
	require.ErrorIs(t, g.Begin(context.Background()), errSetup)
	require.False(t, g.Holds(), "a failed setup keeps nothing")
}

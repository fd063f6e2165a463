package im

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A busy session reuses one write context; a quiet one keeps none, so an
// idle connection holds no timer and no hooks for it.
func TestWriteCtxKeptOnlyWhileBusy(t *testing.T) {
	s := &session{srv: &Server{cfg: Config{WriteTimeout: 10 * time.Second}}, ctx: context.Background()}
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	first, done := s.writeCtx(at(0))
	require.Nil(t, s.wctx, "a first write gets a context of its own")
	done()
	require.Error(t, first.Err(), "and it ends with the write")

	busy, done := s.writeCtx(at(100 * time.Millisecond))
	require.Same(t, s.wctx, busy, "a write soon after another reuses a context")
	done()
	require.NoError(t, busy.Err(), "which outlives the write")
	again, _ := s.writeCtx(at(200 * time.Millisecond))
	require.Equal(t, busy, again)
	dl, _ := again.Deadline()
	require.Equal(t, at(10*time.Second+100*time.Millisecond), dl)

	// Less than nine tenths of the timeout left: renewed.
	renewed, _ := s.writeCtx(at(1100*time.Millisecond + time.Millisecond))
	require.NotEqual(t, busy, renewed)
	require.Error(t, busy.Err(), "the old one is released")
	dl, _ = renewed.Deadline()
	require.Equal(t, at(11*time.Second+101*time.Millisecond), dl)

	// Quiet for more than a second: released, and the write gets its own.
	quiet, done := s.writeCtx(at(3 * time.Second))
	require.Nil(t, s.wctx)
	require.Error(t, renewed.Err())
	done()
	require.Error(t, quiet.Err())
}

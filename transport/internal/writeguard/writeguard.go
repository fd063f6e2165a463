// Package writeguard ties a connection's writes to the contexts they are
// made under, for the transports. The core passes one context to many
// writes, so a Guard sets up its hook (and the caller's per-context setup,
// such as a socket deadline) once per context rather than once per write.
// The hook acts only on a write in progress: a context that ends between
// writes, or after the last one, leaves the connection alone, and is
// forgotten so that an idle connection holds none.
package writeguard

import (
	"context"
	"sync"
	"sync/atomic"
)

// Guard guards the writes of one connection. Begin and End bracket each
// write; writes never overlap. The zero value is not usable: set Abort.
type Guard struct {
	// Setup, if set, is called under a context that differs from the last
	// one, before the write; an error fails the write.
	Setup func(ctx context.Context) error
	// Abort is called, from the context's own goroutine, when a context
	// ends during a write under it; it must unblock that write.
	Abort func(ctx context.Context)

	mu   sync.Mutex // guards ctx, stop and gen: Begin sets them, the hook clears them
	ctx  context.Context
	stop func() bool
	gen  uint64 // counts the contexts seen
	// writing is the gen of the write in progress; 0 between writes.
	writing atomic.Uint64
}

// Begin marks the start of a write under ctx. It returns ctx's error if
// ctx has ended, or Setup's; then the write must not happen, and End need
// not be called.
func (g *Guard) Begin(ctx context.Context) error {
	g.mu.Lock()
	if ctx != g.ctx {
		if g.Setup != nil {
			if err := g.Setup(ctx); err != nil {
				g.mu.Unlock()
				return err
			}
		}
		if g.stop != nil {
			g.stop()
		}
		g.gen++
		gen := g.gen
		g.stop = context.AfterFunc(ctx, func() { g.ended(ctx, gen) })
		g.ctx = ctx
	}
	gen := g.gen
	g.mu.Unlock()
	// Marked after the hook is set and before ctx is checked: ctx ending
	// from here on finds this write in progress, or else the check finds
	// it ended. A hook of an earlier context never matches.
	g.writing.Store(gen)
	if err := ctx.Err(); err != nil {
		g.writing.Store(0)
		return err
	}
	return nil
}

// End marks the end of the write Begin started.
func (g *Guard) End() { g.writing.Store(0) }

// Holds reports whether the guard still holds a context: false once the
// last one has ended.
func (g *Guard) Holds() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ctx != nil
}

func (g *Guard) ended(ctx context.Context, gen uint64) {
	if g.writing.Load() == gen {
		g.Abort(ctx)
	}
	g.mu.Lock()
	if g.gen == gen {
		g.ctx, g.stop = nil, nil
	}
	g.mu.Unlock()
}

package im

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// idGen makes server message ids: 16 bytes, hex-encoded, of milliseconds
// since the epoch (6 bytes), a random per-process node id (4 bytes) and a
// per-process counter (6 bytes). Unique across processes without
// coordination, roughly time-ordered, and cheap: no syscall per id.
type idGen struct {
	node    [4]byte
	counter atomic.Uint64
}

func newIDGen() *idGen {
	g := new(idGen)
	_, _ = rand.Read(g.node[:]) // crypto/rand.Read never fails on supported platforms
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	// Start the counter at a random point so that two processes that drew
	// the same node id still differ.
	g.counter.Store(binary.BigEndian.Uint64(seed[:]) >> 20)
	return g
}

func (g *idGen) next(now time.Time) string {
	var raw [16]byte
	ms := uint64(now.UnixMilli())
	c := g.counter.Add(1)
	raw[0], raw[1], raw[2], raw[3], raw[4], raw[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	copy(raw[6:10], g.node[:])
	raw[10], raw[11], raw[12], raw[13], raw[14], raw[15] = byte(c>>40), byte(c>>32), byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	var out [32]byte
	hex.Encode(out[:], raw[:])
	return string(out[:])
}

// randomID returns 128 bits from crypto/rand, hex-encoded (32 characters).
// Ids that grant access (a group's id is all a user needs to ask to join
// it or to look it up) come from here, not from idGen: idGen's ids are
// time-ordered with a per-process counter, and every user sees some in
// their own send acks, so the next ones are easy to guess.
func randomID() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(raw[:])
}

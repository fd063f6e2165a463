package wire

import "sync/atomic"

// Encodings holds a frame's encodings, one per format, for every
// connection the frame is written to. The first connection to write the
// frame in a format encodes it; the others reuse those bytes. It is safe
// for concurrent use, and its zero value is empty.
//
// Lookups take no lock: the encodings are a list that only grows, by
// compare-and-swap, and a frame has one or two of them.
type Encodings struct {
	head atomic.Pointer[encoding]
}

type encoding struct {
	format any
	b      []byte
	next   *encoding
}

// Get returns the encoding stored for format, or nil. Formats are compared
// with ==; a transport uses values of an unexported type of its own.
func (e *Encodings) Get(format any) []byte {
	for n := e.head.Load(); n != nil; n = n.next {
		if n.format == format {
			return n.b
		}
	}
	return nil
}

// Put stores b as the encoding for format and returns it, unless another
// writer stored one first, which it then returns instead (both are the
// same frame's encoding; the first wins so that every connection sends the
// same bytes). b must not be modified afterwards.
func (e *Encodings) Put(format any, b []byte) []byte {
	for {
		head := e.head.Load()
		for n := head; n != nil; n = n.next {
			if n.format == format {
				return n.b
			}
		}
		if e.head.CompareAndSwap(head, &encoding{format: format, b: b, next: head}) {
			return b
		}
	}
}

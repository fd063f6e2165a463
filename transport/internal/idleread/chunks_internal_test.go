package idleread

import (
	"bufio"
	"io"
	"net"
	"testing"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, peer net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); peer.Close() })
	return server, peer
}

// Read behind a small bufio.Reader, as coder/websocket and the TCP
// transport do, both ways of waiting give every chunk back once its bytes
// are read out, and pass on the bytes given to NewBuffered first.
func TestChunksAreGivenBack(t *testing.T) {
	for _, raw := range []bool{true, false} {
		name := "raw"
		if !raw {
			name = "buffered" // TLS, or not a unix system
		}
		t.Run(name, func(t *testing.T) {
			server, peer := tcpPair(t)
			r := NewBuffered(server, []byte("left over "))
			size := 512
			if raw {
				if !r.WaitsUnbuffered() {
					t.Skip("no raw reads here")
				}
				size = 16
			} else {
				r.raw = nil
			}
			br := bufio.NewReaderSize(r, size)

			// The leftovers come first, and nothing is held after a
			// message.
			if _, err := peer.Write([]byte("small")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len("left over small"))
			if _, err := io.ReadFull(br, got); err != nil {
				t.Fatal(err)
			}
			if string(got) != "left over small" {
				t.Fatalf("read %q", got)
			}
			if r.chunk != nil {
				t.Fatal("a chunk is held after a small message")
			}

			// A burst larger than a chunk is read in chunks, each given
			// back once it has been read out.
			burst := make([]byte, 3*ChunkSize)
			for i := range burst {
				burst[i] = byte(i % 251)
			}
			go func() { _, _ = peer.Write(burst) }()
			got = make([]byte, len(burst))
			for n := 0; n < len(got); {
				// Headers a byte at a time, payloads in pieces of any size.
				if n%3 == 0 {
					b, err := br.ReadByte()
					if err != nil {
						t.Fatal(err)
					}
					got[n] = b
					n++
					continue
				}
				m, err := br.Read(got[n:min(len(got), n+700)])
				if err != nil {
					t.Fatal(err)
				}
				n += m
			}
			for i := range burst {
				if got[i] != burst[i] {
					t.Fatalf("byte %d is %d, not %d", i, got[i], burst[i])
				}
			}
			if r.chunk != nil || r.Buffered() != 0 {
				t.Fatal("a chunk is held once everything is read")
			}

			// The peer's close reads as EOF.
			peer.Close()
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("after the peer's close: %v, want io.EOF", err)
			}
		})
	}
}

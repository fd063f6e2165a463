package idleread_test

import (
	"bufio"
	"io"
	"net"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/wire"
	"github.com/imserver/imserver/transport/internal/idleread"
)

// BenchmarkReadFrames reads 200-byte frames from a loopback socket, as a
// TCP connection's reader does under load, through a Reader with a
// header-sized bufio.Reader over it (as the tcp package does) and, for
// comparison, through a 4 KiB bufio.Reader.
func BenchmarkReadFrames(b *testing.B) {
	for _, bc := range []struct {
		name string
		wrap func(net.Conn) *bufio.Reader
	}{
		{"idleread", func(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(idleread.New(c), wire.HeaderSize) }},
		{"bufio4k", func(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 4<<10) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client, server := pipe(b)
			frame, err := wire.AppendFrame(nil, im.Frame{Command: 1, Sequence: 1, Body: make([]byte, 200-wire.HeaderSize)})
			if err != nil {
				b.Fatal(err)
			}
			// Batches of 16 frames, as a loaded client's writes coalesce.
			var batch []byte
			for range 16 {
				batch = append(batch, frame...)
			}
			go func() {
				for i := 0; i < b.N; i += 16 {
					if _, err := client.Write(batch); err != nil {
						return
					}
				}
			}()
			br := bc.wrap(server)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := wire.ReadFrame(br, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			client.Close()
			_, _ = io.Copy(io.Discard, server)
		})
	}
}

func pipe(b testing.TB) (client, server net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

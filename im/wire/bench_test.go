package wire_test

import (
	"bytes"
	"testing"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// A push of a short text message is about this large.
var benchFrame = wire.Frame{Command: imv1.CommandType_CMD_PUSH_MSG, Sequence: 7, Body: bytes.Repeat([]byte{0x5a}, 256)}

func BenchmarkAppendFrame(b *testing.B) {
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(wire.HeaderSize + len(benchFrame.Body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var err error
		if buf, err = wire.AppendFrame(buf[:0], benchFrame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadFrame(b *testing.B) {
	one, err := wire.AppendFrame(nil, benchFrame)
	if err != nil {
		b.Fatal(err)
	}
	stream := bytes.Repeat(one, 1024)
	r := bytes.NewReader(stream)
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if r.Len() == 0 {
			r.Reset(stream)
		}
		if _, err := wire.ReadFrame(r, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnvelope(b *testing.B) {
	b.Run("encode", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = wire.AppendEnvelope(buf[:0], benchFrame, 1700000000000)
		}
	})
	b.Run("decode", func(b *testing.B) {
		p := wire.AppendEnvelope(nil, benchFrame, 1700000000000)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := wire.DecodeEnvelope(p, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

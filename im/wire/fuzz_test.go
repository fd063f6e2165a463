package wire_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// FuzzReadFrame feeds arbitrary bytes to ReadFrame, which must never panic
// and never return a body over its limit, and checks that whatever it
// accepts, and whatever AppendFrame encodes, round-trips exactly.
func FuzzReadFrame(f *testing.F) {
	for _, fr := range []wire.Frame{
		{Command: imv1.CommandType_CMD_HEARTBEAT_REQ, Sequence: 1},
		{Command: imv1.CommandType_CMD_AUTH_REQ, Sequence: 2, Body: []byte("\x0a\x02u1\x12\x03tok")},
		{Command: 0xFFFF, Sequence: 0xFFFFFFFF, Body: []byte{0xff}},
	} {
		enc, err := wire.AppendFrame(nil, fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc, uint16(0))
		f.Add(enc[:len(enc)-1], uint16(0))
		f.Add(append(bytes.Clone(enc), enc...), uint16(1))
	}
	f.Add([]byte{}, uint16(0))
	f.Add([]byte("\xef\x89\x01\x00\x00\x05\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"), uint16(0)) // bad crc
	f.Add([]byte("\xef\x89\x01\x00\x00\xc8\x00\x00\x00\x01\xff\xff\xff\xff\x00\x00"), uint16(0)) // huge length
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint16(0))

	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		maxBody := int(limit) // 0 means wire.MaxFrameSize
		effective := maxBody
		if effective == 0 {
			effective = wire.MaxFrameSize
		}

		fr, err := wire.ReadFrame(bytes.NewReader(data), maxBody)

		// From a bufio.Reader (a small one, so bodies cross its buffer)
		// ReadFrame takes another path, which must read the same.
		bfr, berr := wire.ReadFrame(bufio.NewReaderSize(bytes.NewReader(data), 16), maxBody)
		if (err == nil) != (berr == nil) || (err != nil && err.Error() != berr.Error()) {
			t.Fatalf("plain reader: %v; bufio.Reader: %v", err, berr)
		}
		if err == nil && (bfr.Command != fr.Command || bfr.Sequence != fr.Sequence || !bytes.Equal(bfr.Body, fr.Body)) {
			t.Fatalf("plain reader: %v; bufio.Reader: %v", fr, bfr)
		}

		if err == nil {
			if len(fr.Body) > effective || cap(fr.Body) > effective {
				t.Fatalf("body of %d bytes (cap %d) over the limit %d", len(fr.Body), cap(fr.Body), effective)
			}
			enc, err := wire.AppendFrame(nil, fr)
			if err != nil {
				t.Fatalf("re-encoding an accepted frame: %v", err)
			}
			// With no flags set, the accepted bytes are exactly what
			// AppendFrame produces.
			if data[3] == 0 && !bytes.Equal(enc, data[:len(enc)]) {
				t.Fatalf("re-encoded %x, read %x", enc, data[:len(enc)])
			}
			assertRoundTrip(t, fr)
		}

		// The other direction: data as a command, a sequence and a body.
		if len(data) >= 6 {
			assertRoundTrip(t, wire.Frame{
				Command:  imv1.CommandType(binary.BigEndian.Uint16(data)),
				Sequence: binary.BigEndian.Uint32(data[2:]),
				Body:     data[6:],
			})
		}
	})
}

func assertRoundTrip(t *testing.T, in wire.Frame) {
	t.Helper()
	enc, err := wire.AppendFrame(nil, in)
	if err != nil {
		t.Fatalf("AppendFrame: %v", err)
	}
	out, err := wire.ReadFrame(bytes.NewReader(enc), 0)
	if err != nil {
		t.Fatalf("ReadFrame(AppendFrame(%v)): %v", in, err)
	}
	if out.Command != in.Command || out.Sequence != in.Sequence || !bytes.Equal(out.Body, in.Body) {
		t.Fatalf("round trip changed the frame: %v became %v", in, out)
	}
}

package wire_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
	"github.com/stretchr/testify/require"
)

// refCRC is a bitwise CRC-16/CCITT-FALSE, written independently of the
// package's table-driven one, to build headers the codec has not produced.
func refCRC(p []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range p {
		for i := 7; i >= 0; i-- {
			bit := (crc>>15)&1 ^ uint16(b>>i)&1
			crc <<= 1
			if bit != 0 {
				crc ^= 0x1021
			}
		}
	}
	return crc
}

// rawHeader builds a header field by field, with a correct checksum.
func rawHeader(magic uint16, version, flags byte, cmd uint16, seq, length uint32) []byte {
	h := binary.BigEndian.AppendUint16(nil, magic)
	h = append(h, version, flags)
	h = binary.BigEndian.AppendUint16(h, cmd)
	h = binary.BigEndian.AppendUint32(h, seq)
	h = binary.BigEndian.AppendUint32(h, length)
	return binary.BigEndian.AppendUint16(h, refCRC(h))
}

func TestRefCRC(t *testing.T) {
	// The catalogue check value of CRC-16/CCITT-FALSE.
	require.Equal(t, uint16(0x29B1), refCRC([]byte("123456789")))
}

func TestAppendFrameGolden(t *testing.T) {
	// Headers computed with Python's binascii.crc_hqx(header, 0xFFFF).
	tests := []struct {
		name string
		f    wire.Frame
		want string
	}{
		{"heartbeat", wire.Frame{Command: imv1.CommandType_CMD_HEARTBEAT_REQ, Sequence: 1},
			"ef89010000050000000100000000f678"},
		{"send with body", wire.Frame{Command: imv1.CommandType_CMD_SEND_MSG_REQ, Sequence: 0x01020304, Body: []byte("abc")},
			"ef89010000c80102030400000003b2c4" + hex.EncodeToString([]byte("abc"))},
		{"auth response", wire.Frame{Command: imv1.CommandType_CMD_AUTH_RSP, Sequence: 7, Body: []byte{0x08, 0x00}},
			"ef89010000650000000700000002e39a0800"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.AppendFrame(nil, tt.f)
			require.NoError(t, err)
			require.Equal(t, tt.want, hex.EncodeToString(got))

			prefix := []byte("prefix")
			got, err = wire.AppendFrame(prefix, tt.f)
			require.NoError(t, err)
			require.Equal(t, "prefix", string(got[:6]), "AppendFrame must append, not overwrite")
			require.Equal(t, tt.want, hex.EncodeToString(got[6:]))
		})
	}
}

func TestAppendFrameRejects(t *testing.T) {
	tests := []struct {
		name   string
		f      wire.Frame
		target error
	}{
		{"body over MaxFrameSize", wire.Frame{Command: 200, Body: make([]byte, wire.MaxFrameSize+1)}, wire.ErrFrameTooLarge},
		{"negative command", wire.Frame{Command: -1}, wire.ErrInvalidArgument},
		{"command over 16 bits", wire.Frame{Command: 0x10000}, wire.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte{1, 2, 3}
			got, err := wire.AppendFrame(dst, tt.f)
			require.ErrorIs(t, err, tt.target)
			require.ErrorIs(t, err, wire.ErrInvalidArgument)
			require.Equal(t, []byte{1, 2, 3}, got, "dst must be left as it was")
		})
	}
	// The limit itself is allowed, as the SDK allows it.
	_, err := wire.AppendFrame(nil, wire.Frame{Command: 200, Body: make([]byte, wire.MaxFrameSize)})
	require.NoError(t, err)
}

func TestReadFrameRoundTrip(t *testing.T) {
	bodies := map[string][]byte{
		"empty":          nil,
		"one byte":       {0x42},
		"64 KiB":         bytes.Repeat([]byte{1}, 64<<10),
		"64 KiB + 1":     bytes.Repeat([]byte{2}, 64<<10+1),
		"300 KiB":        patterned(300 << 10),
		"max frame size": patterned(wire.MaxFrameSize),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			in := wire.Frame{Command: imv1.CommandType_CMD_PUSH_MSG, Sequence: 99, Body: body}
			enc, err := wire.AppendFrame(nil, in)
			require.NoError(t, err)
			require.Len(t, enc, wire.HeaderSize+len(body))

			// iotest-style one-byte reads exercise every partial-read path;
			// a bufio.Reader, the header parsed in its buffer; a small
			// one, bodies larger than the buffer.
			for _, r := range []io.Reader{
				bytes.NewReader(enc),
				&oneByteReader{enc},
				bufio.NewReader(bytes.NewReader(enc)),
				bufio.NewReaderSize(&oneByteReader{enc}, 16),
			} {
				out, err := wire.ReadFrame(r, 0)
				require.NoError(t, err)
				require.Equal(t, in.Command, out.Command)
				require.Equal(t, in.Sequence, out.Sequence)
				require.Equal(t, len(body), len(out.Body))
				require.True(t, bytes.Equal(body, out.Body))
				_, err = wire.ReadFrame(r, 0)
				require.ErrorIs(t, err, io.EOF, "a clean end between frames is io.EOF")
			}
		})
	}
}

func TestReadFrameStream(t *testing.T) {
	var enc []byte
	var want []wire.Frame
	for i := range 50 {
		f := wire.Frame{Command: imv1.CommandType(i % 700), Sequence: uint32(i), Body: patterned(i * 37)}
		want = append(want, f)
		var err error
		enc, err = wire.AppendFrame(enc, f)
		require.NoError(t, err)
	}
	r := bytes.NewReader(enc)
	for i, w := range want {
		got, err := wire.ReadFrame(r, 0)
		require.NoError(t, err, "frame %d", i)
		require.Equal(t, w.Command, got.Command)
		require.Equal(t, w.Sequence, got.Sequence)
		require.True(t, bytes.Equal(w.Body, got.Body), "frame %d body", i)
	}
	_, err := wire.ReadFrame(r, 0)
	require.ErrorIs(t, err, io.EOF)
}

func TestReadFrameBodyIsFresh(t *testing.T) {
	enc, err := wire.AppendFrame(nil, wire.Frame{Command: 202, Body: []byte("hello")})
	require.NoError(t, err)
	r := bytes.NewReader(enc)
	f, err := wire.ReadFrame(r, 0)
	require.NoError(t, err)
	clear(enc)
	require.Equal(t, "hello", string(f.Body), "the body must not alias the reader's buffer")
}

func TestReadFrameHeaderFields(t *testing.T) {
	// Commands the SDK does not know, and flags, pass through untouched:
	// the core answers unknown commands, and no flag is defined yet.
	enc := append(rawHeader(0xEF89, 1, 0x80, 0xFFFF, 0xFFFFFFFF, 2), 'h', 'i')
	f, err := wire.ReadFrame(bytes.NewReader(enc), 0)
	require.NoError(t, err)
	require.Equal(t, imv1.CommandType(0xFFFF), f.Command)
	require.Equal(t, uint32(0xFFFFFFFF), f.Sequence)
	require.Equal(t, "hi", string(f.Body))
}

func TestReadFrameErrors(t *testing.T) {
	good, err := wire.AppendFrame(nil, wire.Frame{Command: 200, Sequence: 5, Body: []byte("0123456789")})
	require.NoError(t, err)
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name    string
		enc     []byte
		maxBody int
		target  error
	}{
		{"empty stream", nil, 0, io.EOF},
		{"truncated header", good[:7], 0, io.ErrUnexpectedEOF},
		{"truncated body", good[:len(good)-1], 0, io.ErrUnexpectedEOF},
		{"header only", good[:wire.HeaderSize], 0, io.ErrUnexpectedEOF},
		{"bad magic", flip(0), 0, wire.ErrBadMagic},
		{"bad magic low byte", flip(1), 0, wire.ErrBadMagic},
		{"bad version", flip(2), 0, wire.ErrBadVersion},
		{"version 2 with valid crc", rawHeader(0xEF89, 2, 0, 200, 1, 0), 0, wire.ErrBadVersion},
		{"flags changed", flip(3), 0, wire.ErrBadChecksum},
		{"command changed", flip(5), 0, wire.ErrBadChecksum},
		{"sequence changed", flip(9), 0, wire.ErrBadChecksum},
		{"length changed", flip(13), 0, wire.ErrBadChecksum},
		{"crc changed", flip(15), 0, wire.ErrBadChecksum},
		{"over caller limit", good, 9, wire.ErrFrameTooLarge},
		{"over MaxFrameSize", rawHeader(0xEF89, 1, 0, 200, 1, wire.MaxFrameSize+1), 0, wire.ErrFrameTooLarge},
		{"limit above MaxFrameSize is lowered", rawHeader(0xEF89, 1, 0, 200, 1, wire.MaxFrameSize+1), 4 * wire.MaxFrameSize, wire.ErrFrameTooLarge},
		{"negative limit means MaxFrameSize", rawHeader(0xEF89, 1, 0, 200, 1, 0xFFFFFFFF), -1, wire.ErrFrameTooLarge},
		{"all zeros", make([]byte, 64), 0, wire.ErrBadMagic},
		{"http request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0, wire.ErrBadMagic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tt.enc), bufio.NewReader(bytes.NewReader(tt.enc))} {
				_, err := wire.ReadFrame(r, tt.maxBody)
				require.ErrorIs(t, err, tt.target, "%T", r)
				switch tt.target {
				case wire.ErrBadMagic, wire.ErrBadVersion, wire.ErrBadChecksum, wire.ErrFrameTooLarge:
					require.ErrorIs(t, err, wire.ErrInvalidArgument)
				default:
					require.False(t, errors.Is(err, wire.ErrInvalidArgument))
				}
			}
		})
	}
	// The caller's limit itself is allowed.
	f, err := wire.ReadFrame(bytes.NewReader(good), 10)
	require.NoError(t, err)
	require.Equal(t, "0123456789", string(f.Body))
}

// TestReadFrameBufferedAllocatesOnlyTheBody checks the reason ReadFrame
// treats a *bufio.Reader apart: a frame read from one costs its body and
// nothing else.
func TestReadFrameBufferedAllocatesOnlyTheBody(t *testing.T) {
	one, err := wire.AppendFrame(nil, wire.Frame{Command: imv1.CommandType_CMD_PUSH_MSG, Sequence: 1})
	require.NoError(t, err)
	stream := bytes.NewReader(bytes.Repeat(one, 200))
	br := bufio.NewReader(stream)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := wire.ReadFrame(br, 0); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs, "an empty-bodied frame from a bufio.Reader")
}

// TestReadFrameAllocatesAsDataArrives checks that a header announcing a
// large body cannot make the reader allocate it before the bytes exist.
func TestReadFrameAllocatesAsDataArrives(t *testing.T) {
	enc := append(rawHeader(0xEF89, 1, 0, 200, 1, wire.MaxFrameSize), make([]byte, 100)...)
	const runs = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		_, err := wire.ReadFrame(bytes.NewReader(enc), 0)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	}
	runtime.ReadMemStats(&after)
	perRun := (after.TotalAlloc - before.TotalAlloc) / runs
	require.Less(t, perRun, uint64(wire.MaxFrameSize/4),
		"reading 100 bytes of an announced 1 MiB body allocated %d bytes", perRun)
}

func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// oneByteReader returns one byte per Read.
type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

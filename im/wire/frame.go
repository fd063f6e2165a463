package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/imserver/imserver/im/imv1"
)

// MaxFrameSize is the largest frame body either end accepts: 1 MiB, as
// IM-iOS-SDK's codec allows. A larger frame closes the connection, because
// the stream can no longer be trusted to be in step.
const MaxFrameSize = 1 << 20

// Frame is one protocol frame, independent of the transport that carries
// it: the TCP framing below and the WebSocket envelope both turn into one.
type Frame struct {
	Command imv1.CommandType
	// Sequence is the client's request number; a response echoes it, and a
	// push carries 0.
	Sequence uint32
	// Body is the command's message, serialized as protobuf. Frames queued
	// for writing share their Body between connections: never modify it.
	Body []byte
	// Shared, when not nil, keeps the frame's encodings for the transports
	// that write it: the core sets it on a push that goes to many
	// connections, so that the push is encoded once per format (a whole
	// WebSocket message, say) rather than once per connection. A transport
	// may ignore it; whatever it stores there must depend on nothing but
	// the frame.
	Shared *Encodings
}

// HeaderSize is the length of the TCP header in front of every frame body.
const HeaderSize = 16

// Header layout, big-endian. The checksum covers bytes [0, crcOffset).
const (
	magic         = 0xEF89
	version       = 1
	offVersion    = 2
	offFlags      = 3
	offCommand    = 4
	offSequence   = 6
	offLength     = 10
	crcOffset     = 14
	maxCommand    = 0xFFFF
	smallBodySize = 64 << 10 // bodies up to this size are allocated in one go
)

// Errors ReadFrame returns for a header that cannot be trusted. Each wraps
// ErrInvalidArgument. After any of them the stream is out of step and the
// connection must be closed. ErrFrameTooLarge is also what DecodeEnvelope
// returns for a body over its limit.
var (
	ErrBadMagic      = fmt.Errorf("wire: bad frame magic: %w", ErrInvalidArgument)
	ErrBadVersion    = fmt.Errorf("wire: unsupported frame version: %w", ErrInvalidArgument)
	ErrBadChecksum   = fmt.Errorf("wire: frame header checksum mismatch: %w", ErrInvalidArgument)
	ErrFrameTooLarge = fmt.Errorf("wire: frame body too large: %w", ErrInvalidArgument)
)

// crc16 is CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no
// reflection, no final XOR. It covers only 14 header bytes, but every frame
// in and out, once per recipient: bit by bit it was 5% of the server's CPU
// fanning out to a large group.
func crc16(p []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range p {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^b]
	}
	return crc
}

// crc16Table holds the CRC of each byte value; built once, never written.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// AppendFrame appends f's TCP header and body to dst and returns the
// extended slice. It fails, leaving dst as it was, with ErrFrameTooLarge if
// f.Body is longer than MaxFrameSize, and with an error wrapping
// ErrInvalidArgument if f.Command does not fit the header's 16 bits.
func AppendFrame(dst []byte, f Frame) ([]byte, error) {
	dst, err := AppendHeader(dst, f)
	if err != nil {
		return dst, err
	}
	return append(dst, f.Body...), nil
}

// AppendHeader is AppendFrame without the body: the caller sends f.Body
// right after the header, for example in one writev with it, so that a
// large body is not copied. It fails as AppendFrame does.
func AppendHeader(dst []byte, f Frame) ([]byte, error) {
	if len(f.Body) > MaxFrameSize {
		return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(f.Body), MaxFrameSize)
	}
	if f.Command < 0 || f.Command > maxCommand {
		return dst, fmt.Errorf("wire: command %d does not fit in 16 bits: %w", int32(f.Command), ErrInvalidArgument)
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, magic)
	dst = append(dst, version, 0) // flags: none defined
	dst = binary.BigEndian.AppendUint16(dst, uint16(f.Command))
	dst = binary.BigEndian.AppendUint32(dst, f.Sequence)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(f.Body)))
	dst = binary.BigEndian.AppendUint16(dst, crc16(dst[start:start+crcOffset]))
	return dst, nil
}

// header is a decoded, verified frame header.
type header struct {
	command  imv1.CommandType
	sequence uint32
	length   int
}

// parseHeader verifies and decodes a HeaderSize-byte header. The flags byte
// is covered by the checksum but otherwise ignored, as the SDK's decoder
// does: no flag is defined yet.
func parseHeader(p []byte, maxBody int) (header, error) {
	if m := binary.BigEndian.Uint16(p); m != magic {
		return header{}, fmt.Errorf("%w: %#04x", ErrBadMagic, m)
	}
	if v := p[offVersion]; v != version {
		return header{}, fmt.Errorf("%w: %d", ErrBadVersion, v)
	}
	if got, want := binary.BigEndian.Uint16(p[crcOffset:]), crc16(p[:crcOffset]); got != want {
		return header{}, fmt.Errorf("%w: header says %#04x, computed %#04x", ErrBadChecksum, got, want)
	}
	n := binary.BigEndian.Uint32(p[offLength:])
	if uint64(n) > uint64(maxBody) {
		return header{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, maxBody)
	}
	return header{
		command:  imv1.CommandType(binary.BigEndian.Uint16(p[offCommand:])),
		sequence: binary.BigEndian.Uint32(p[offSequence:]),
		length:   int(n),
	}, nil
}

// bodyLimit resolves a caller's body limit: the protocol never allows more
// than MaxFrameSize.
func bodyLimit(maxBody int) int {
	if maxBody <= 0 || maxBody > MaxFrameSize {
		return MaxFrameSize
	}
	return maxBody
}

// ReadFrame reads one TCP frame from r. maxBody bounds the body; zero,
// negative or anything above MaxFrameSize means MaxFrameSize. The returned
// Body is a fresh slice (nil for an empty body).
//
// It returns io.EOF if r ends before the first byte of a frame and
// io.ErrUnexpectedEOF if it ends inside one. A header with the wrong magic,
// version or checksum, or announcing a body over the limit, gives
// ErrBadMagic, ErrBadVersion, ErrBadChecksum or ErrFrameTooLarge.
//
// Memory for the body is allocated as its bytes arrive, so a header that
// announces a large body costs nothing until the body is actually sent.
// When r is a *bufio.Reader the header is parsed in its buffer, and a
// frame costs no allocation besides its body.
func ReadFrame(r io.Reader, maxBody int) (Frame, error) {
	if br, ok := r.(*bufio.Reader); ok {
		return readBuffered(br, maxBody)
	}
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	h, err := parseHeader(hdr[:], bodyLimit(maxBody))
	if err != nil {
		return Frame{}, err
	}
	return readBody(r, h)
}

// readBuffered is ReadFrame from a bufio.Reader: Peek instead of
// io.ReadFull into a local array, which would escape to the heap through
// the io.Reader interface.
func readBuffered(br *bufio.Reader, maxBody int) (Frame, error) {
	hdr, err := br.Peek(HeaderSize)
	if err != nil {
		if len(hdr) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	h, err := parseHeader(hdr, bodyLimit(maxBody))
	if err != nil {
		return Frame{}, err
	}
	if _, err := br.Discard(HeaderSize); err != nil {
		return Frame{}, err
	}
	return readBody(br, h)
}

// readBody reads the h.length bytes of body that follow header h. Large
// bodies grow by doubling as data arrives instead of being allocated up
// front from the untrusted length.
func readBody(r io.Reader, h header) (Frame, error) {
	f := Frame{Command: h.command, Sequence: h.sequence}
	n := h.length
	if n == 0 {
		return f, nil
	}
	if n <= smallBodySize {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return Frame{}, unexpectedEOF(err)
		}
		f.Body = b
		return f, nil
	}
	b := make([]byte, 0, smallBodySize)
	for len(b) < n {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(2*cap(b), n))
			copy(nb, b)
			b = nb
		}
		m, err := io.ReadFull(r, b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err != nil {
			return Frame{}, unexpectedEOF(err)
		}
	}
	f.Body = b
	return f, nil
}

// unexpectedEOF reports a stream that ends inside a frame as such.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

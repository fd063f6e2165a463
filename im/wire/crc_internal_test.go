package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCRC16(t *testing.T) {
	tests := []struct {
		in   string
		want uint16
	}{
		{"", 0xFFFF},          // init, no final XOR
		{"123456789", 0x29B1}, // the catalogue check value
		{"A", 0xB915},
		{"\xef\x89\x01\x00\x00\x05\x00\x00\x00\x01\x00\x00\x00\x00", 0xF678}, // a heartbeat header
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, crc16([]byte(tt.in)))
		})
	}
}

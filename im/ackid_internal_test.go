package im

import (
	"testing"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// ackedID reads what proto.Unmarshal would, and refuses what it refuses.
func TestAckedID(t *testing.T) {
	for _, m := range []*imv1.MessageAck{
		{ServerMsgId: "0123456789abcdef0123456789abcdef"},
		{ServerMsgId: "x", Seq: 42},
		{Seq: 7},
		{},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		// An unknown field before it is skipped.
		b = append([]byte{0x98, 0x06, 0x01}, b...)
		id, ok := ackedID(b)
		if ok != (m.ServerMsgId != "") || string(id) != m.ServerMsgId {
			t.Errorf("ackedID(%v) = %q, %v", m, id, ok)
		}
	}
	for _, bad := range [][]byte{{0x0a, 0x05, 'a'}, {0x0a}, {0xff}, {0x08}} {
		if id, ok := ackedID(bad); ok {
			t.Errorf("ackedID(%x) = %q, true; want a refusal", bad, id)
		}
	}
}

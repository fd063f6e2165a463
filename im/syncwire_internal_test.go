package im

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im/imv1"
)

// syncTestMessages returns messages of conv from seq from on, covering
// what a MessageInfo can hold: tombstones, empty and invalid UTF-8
// strings, negative types and times, large content.
func syncTestMessages(conv string, from int64, n int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		m := Message{
			ConversationID: conv,
			Seq:            from + int64(i),
			ServerID:       fmt.Sprintf("srv-%d", i),
			SenderID:       "alice",
			ReceiverID:     "bob",
			ClientMsgID:    fmt.Sprintf("c-%d", i),
			Type:           TextMessage,
			Content:        bytes.Repeat([]byte{byte(i)}, i%7*50),
			SendTime:       int64(1700000000000 + i),
			CreatedAt:      time.UnixMilli(int64(1700000000500 + i)),
		}
		switch i % 6 {
		case 1:
			m.RevokedBy, m.RevokedAt, m.Content = "alice", time.UnixMilli(1700000009999), nil
		case 2:
			m.Extra, m.AttachedInfo, m.ReceiverID = "{\"k\":1}", "info", ""
		case 3:
			m.ClientMsgID, m.SenderID = "bad\xffutf8", "\xfe"
		case 4:
			m.Type, m.SendTime, m.CreatedAt = MessageType(-3), -5, time.Time{}
		case 5:
			m.Content = make([]byte, 3000)
		}
		msgs[i] = m
	}
	return msgs
}

// TestSyncEncoderMatchesProto checks that a hand-encoded BatchSyncResponse
// is byte for byte what proto.Marshal makes of the response the generated
// types would hold, byte budget included.
func TestSyncEncoderMatchesProto(t *testing.T) {
	convs := []string{"single_alice_bob", "group_g1", "system_bob", "single_a\xffb_c"}
	for _, budget := range []int{syncByteBudget, 5000, 100, 0} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			want := &imv1.BatchSyncResponse{ConversationMessages: []*imv1.ConversationMessages{
				{ConversationId: "single_cleared", MaxSeq: 9, SyncedSeq: 9},
			}}
			head, err := proto.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			enc := syncEncoder{body: head, wireScratch: new(wireScratch)}
			left, wantLeft := budget, budget
			var total int32
			for i, conv := range convs {
				from := int64(10*i + 1)
				msgs := syncTestMessages(conv, from, 12)
				to := from + 14 // more than given: has_more
				if i == 1 {
					to = from + 11
				}
				cm := &imv1.ConversationMessages{ConversationId: validUTF8(conv), SyncedSeq: from - 1}
				if wantLeft > 0 {
					cm.Messages, wantLeft = appendWithin(cm.Messages, msgs, wantLeft, want.TotalMessageCount == 0)
					if n := len(cm.Messages); n > 0 {
						cm.SyncedSeq = cm.Messages[n-1].Seq
					}
				}
				cm.MaxSeq = to
				if cm.SyncedSeq < to {
					cm.HasMore, cm.MaxSeq = true, cm.SyncedSeq
				}
				want.TotalMessageCount += int32(len(cm.Messages))
				want.ConversationMessages = append(want.ConversationMessages, cm)

				var n int
				n, left = enc.conversation(conv, from, to, msgs, left, total == 0)
				total += int32(n)
				if n != len(cm.Messages) || left != wantLeft {
					t.Fatalf("%s: took %d messages, %d bytes left; want %d, %d", conv, n, left, len(cm.Messages), wantLeft)
				}
			}
			want.ServerTime = 1700000001234
			wantBody, err := proto.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			got := enc.finish(want.ServerTime, total)
			if !bytes.Equal(got, wantBody) {
				var dec imv1.BatchSyncResponse
				if err := proto.Unmarshal(got, &dec); err != nil {
					t.Fatalf("encoded response does not decode: %v", err)
				}
				t.Fatalf("encoded response differs from proto.Marshal's:\n got %v\nwant %v", &dec, want)
			}
		})
	}
}

// BenchmarkBatchSyncEncode measures turning a page of 500 stored messages
// into a BATCH_SYNC response body, by hand.
func BenchmarkBatchSyncEncode(b *testing.B) {
	msgs := make([]Message, 500)
	for i := range msgs {
		msgs[i] = Message{ConversationID: "single_alice_bob", Seq: int64(i + 1), SenderID: "alice", ReceiverID: "bob",
			ServerID: "0123456789abcdef0123456789abcdef", ClientMsgID: "0123456789abcdef", Type: TextMessage,
			Content: make([]byte, 128), CreatedAt: time.Now()}
	}
	enc := syncEncoder{wireScratch: new(wireScratch)}
	b.ReportAllocs()
	for b.Loop() {
		enc.body = nil
		enc.conversation("single_alice_bob", 1, 500, msgs, syncByteBudget, true)
		enc.finish(1, 500)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
}

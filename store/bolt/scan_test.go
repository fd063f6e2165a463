package bolt_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
)

// TestScanWhileAppending scans two conversations over and over while
// another goroutine appends to both, so that scans read messages still
// pending (logged, not yet in their conversation's bucket) as well as
// stored ones, into memory the previous scan used: every page must start
// where it was asked to, run without gap, and hold each message's own
// content.
func TestScanWhileAppending(t *testing.T) {
	s, _ := openTemp(t)
	convs := []string{"group_scan_a", "group_scan_b"}
	const total, batch = 3000, 20
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	appendAll := func() error {
		for i := 0; i < total; i += batch {
			var reqs []im.AppendRequest
			for j := i; j < i+batch; j++ {
				for _, c := range convs {
					reqs = append(reqs, im.AppendRequest{Message: im.Message{
						ConversationID: c, ServerID: fmt.Sprintf("%s-%d", c, j), SenderID: "u", ClientMsgID: fmt.Sprintf("%s-%d", c, j),
						Type: im.TextMessage, Content: []byte(fmt.Sprintf("content of %s %d", c, j+1)),
					}})
				}
			}
			res, err := s.AppendMessages(ctx, reqs)
			if err != nil {
				return err
			}
			for _, r := range res {
				if r.Err != nil {
					return r.Err
				}
			}
		}
		return nil
	}
	appended := make(chan error, 1)
	go func() { appended <- appendAll() }()
	froms := []int64{1, 1}
	check := func(i int, page []im.Message) error {
		c := convs[i]
		for k, m := range page {
			seq := froms[i] + int64(k)
			if m.Seq != seq || m.ConversationID != c || string(m.Content) != fmt.Sprintf("content of %s %d", c, seq) || m.ServerID != fmt.Sprintf("%s-%d", c, seq-1) {
				return fmt.Errorf("%s from %d: message %d is seq %d %q %q", c, froms[i], k, m.Seq, m.Content, m.ServerID)
			}
		}
		// The next scan starts inside this page, so that it reads some
		// of the same messages again, and the rest of the conversation
		// goes on being read.
		if len(page) > 0 {
			froms[i] += int64(len(page)+1) / 2
		}
		return nil
	}
	for done := false; !done; {
		select {
		case err := <-appended:
			require.NoError(t, err)
			done = true
		default:
		}
		ranges := []im.MessageRange{{ConversationID: convs[0], From: froms[0]}, {ConversationID: convs[1], From: froms[1]}}
		require.NoError(t, s.ScanMessageRanges(ctx, ranges, 500, check))
	}
	// Once the appends are over, a scan from 1 reads every message.
	froms = []int64{1, 1}
	n := 0
	require.NoError(t, s.ScanMessageRanges(ctx, []im.MessageRange{{ConversationID: convs[0], From: 1}, {ConversationID: convs[1], From: 1}}, total, func(i int, page []im.Message) error {
		n += len(page)
		return check(i, page)
	}))
	require.Equal(t, 2*total, n)
}

package wire_test

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// A client encodes a request with AppendFrame and decodes the answer with
// ReadFrame, usually straight from a bufio.Reader over its net.Conn.
func ExampleAppendFrame() {
	body, _ := proto.Marshal(&imv1.HeartbeatRequest{ClientTime: 1700000000000})
	enc, err := wire.AppendFrame(nil, wire.Frame{
		Command:  imv1.CommandType_CMD_HEARTBEAT_REQ,
		Sequence: 1,
		Body:     body,
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("header % x\n", enc[:wire.HeaderSize])

	f, err := wire.ReadFrame(bytes.NewReader(enc), 0)
	if err != nil {
		panic(err)
	}
	var req imv1.HeartbeatRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		panic(err)
	}
	fmt.Println(f.Command, f.Sequence, req.GetClientTime())
	// Output:
	// header ef 89 01 00 00 05 00 00 00 01 00 00 00 07 86 9f
	// CMD_HEARTBEAT_REQ 1 1700000000000
}

// Over WebSocket the same frame travels in an envelope, one per binary
// message.
func ExampleAppendEnvelope() {
	enc := wire.AppendEnvelope(nil, wire.Frame{Command: imv1.CommandType_CMD_HEARTBEAT_REQ, Sequence: 2}, 1767225600000)
	fmt.Printf("% x\n", enc)

	f, err := wire.DecodeEnvelope(enc, 0)
	if err != nil {
		panic(err)
	}
	fmt.Println(f.Command, f.Sequence, len(f.Body))

	_, err = wire.DecodeEnvelope([]byte{0xff}, 0)
	fmt.Println(errors.Is(err, wire.ErrBadEnvelope), errors.Is(err, wire.ErrInvalidArgument))
	// Output:
	// 08 05 10 02 20 80 d0 ea b6 b7 33
	// CMD_HEARTBEAT_REQ 2 0
	// true true
}

// A refusal arrives as a protocol error code; SentinelOf turns it into the
// error the server started from, so a client tests it with errors.Is as the
// server's own code would.
func ExampleSentinelOf() {
	rsp := &imv1.SendMessageResponse{ErrorCode: imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE, ErrorMsg: "content is 70000 bytes"}
	err := fmt.Errorf("send: %s: %w", rsp.ErrorMsg, wire.SentinelOf(rsp.ErrorCode))

	fmt.Println(errors.Is(err, wire.ErrTooLarge))
	fmt.Println(err)
	fmt.Println(errors.Is(wire.SentinelOf(imv1.ErrorCode_ERR_TOKEN_EXPIRED), wire.ErrUnauthenticated))
	fmt.Println(wire.SentinelOf(imv1.ErrorCode_ERR_UNKNOWN))
	// Output:
	// true
	// send: content is 70000 bytes: im: message too large
	// true
	// <nil>
}

// Both ends compute a one-to-one conversation's id from the two users, in
// either order.
func ExampleSingleConversationID() {
	id := wire.SingleConversationID("bob", "alice")
	fmt.Println(id, wire.ConversationTypeOf(id) == wire.SingleConversation)
	fmt.Println(wire.GroupConversationID("g1"), wire.ConversationTypeOf("group_g1") == wire.GroupConversation)
	fmt.Println(wire.ConversationTypeOf("nonsense"))
	// Output:
	// single_alice_bob true
	// group_g1 true
	// 0
}

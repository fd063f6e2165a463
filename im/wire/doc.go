// Package wire is the vocabulary that both ends of an imserver connection
// share: the server (package im and its transports) and a client (package
// im/client, or any Go program that speaks the protocol). It sits between
// the generated protocol messages of im/imv1 and everything else, and
// imports nothing of this module but im/imv1, so a client links no server
// code.
//
// It holds:
//
//   - Frame, one command with its sequence and serialized body, and
//     MaxFrameSize, the protocol's bound on a body;
//   - the TCP framing of IM-iOS-SDK: AppendFrame, AppendHeader and
//     ReadFrame, a 16-byte header in front of every body;
//   - the binary WebSocket envelope, one imv1.WebSocketMessage per
//     message: AppendEnvelope and DecodeEnvelope;
//   - conversation ids (SingleConversationID, GroupConversationID,
//     SystemConversationID, ConversationTypeOf) and message types;
//   - the sentinel errors (ErrNotFound, ErrInvalidArgument, …) and
//     SentinelOf, which maps a protocol error code back to one of them.
//
// Package im re-exports Frame, MaxFrameSize, the message and conversation
// types and the sentinels under the same names; they are the same types
// and values, so errors.Is(err, im.ErrTooLarge) holds for a refusal a
// client decoded with SentinelOf.
//
// # TCP framing
//
// Every frame is a 16-byte big-endian header followed by the body, the
// protobuf serialization of the command's message (imv1.NewBody):
//
//	offset size field
//	     0    2 magic, 0xEF89
//	     2    1 version, 1
//	     3    1 flags, 0 (no flag is defined; received flags are ignored)
//	     4    2 command (imv1.CommandType)
//	     6    4 sequence
//	    10    4 body length, at most MaxFrameSize (1 MiB)
//	    14    2 CRC-16/CCITT-FALSE of bytes 0–13
//
// A header with the wrong magic, version or checksum, or announcing a body
// over the limit, is an error after which the stream cannot be trusted;
// the connection must be closed.
//
// # Concurrency
//
// Everything here is a pure function of its arguments, safe to call from
// any goroutine.
//
// # Errors
//
// ErrBadMagic, ErrBadVersion, ErrBadChecksum, ErrFrameTooLarge and
// ErrBadEnvelope wrap ErrInvalidArgument.
package wire

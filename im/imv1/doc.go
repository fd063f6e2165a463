// Package imv1 holds imserver's wire protocol: imv1.proto and the Go code
// generated from it, plus the table that pairs each command with the message
// its frame carries.
//
// The protocol is IM-iOS-SDK's, byte for byte; imserver's extensions only add
// command values, messages and field numbers. docs/PROTOCOL.md describes the
// framing of both transports, the handshake and the sync algorithm.
//
// The generated code is committed. `go generate ./im/imv1` regenerates it
// with the generator versions pinned in internal/protogen/go.mod; only Go is
// needed.
package imv1

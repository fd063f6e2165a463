// Package imserver is an instant-messaging server for Go: a library to embed
// in an existing backend, and a binary (cmd/imserver) that runs on its own.
// It speaks IM-iOS-SDK's protocol, so apps built on that SDK work unchanged.
//
// This root package holds no code; it is the map of the module:
//
//	im                   the core: Server, Config, Store, Authenticator
//	im/imv1              the wire protocol (.proto and generated Go)
//	im/wire              what server and client share: frames, framing,
//	                     conversation ids, sentinel errors
//	im/auth              built-in accounts and the JWT Authenticator
//	im/client            a Go client for the protocol (imports im/wire and
//	                     im/imv1 only, no server package)
//	im/imtest            an in-process server for tests
//	store/bolt           the default embedded Store (bbolt)
//	store/sqlstore       SQLite, PostgreSQL and MySQL Stores
//	store/memstore       an in-memory Store for tests and small tools
//	store/storetest      the conformance suite every Store passes
//	transport/tcp        the SDK's framed TCP protocol
//	transport/websocket  WebSocket, binary and JSON
//	transport/httpapi    the REST API (accounts, health)
//	cmd/imserver         the standalone server
//	cmd/imbench          the load generator that verifies delivery (a module of its own)
//	cmd/imchat           a chat client for the shell, used by the README's tour
//	examples             runnable examples of embedding
//
// Start with package im; docs/DESIGN.md describes how the parts fit.
package imserver

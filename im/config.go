package im

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// DevicePolicy decides what a new login does to a user's older sessions.
type DevicePolicy int

const (
	// AllowAllDevices keeps every session, up to Config.MaxSessionsPerUser
	// (the oldest is kicked past that). The default, because IM-iOS-SDK
	// reports every Apple device as platform "iOS".
	AllowAllDevices DevicePolicy = iota
	// OnePerPlatform kicks the user's older session on the same platform.
	OnePerPlatform
	// OneSession kicks every older session of the user.
	OneSession
)

// Config configures a Server. The zero value of every field but Store and
// Authenticator means the documented default. NewServer copies it; it is never
// modified.
type Config struct {
	// Store keeps messages, conversations and groups. Required. The
	// Server does not close it.
	Store Store
	// Authenticator verifies clients' tokens. Required.
	Authenticator Authenticator
	// Users, if set, is asked whether the recipient of a one-to-one message
	// exists. Without it any valid user id can be messaged.
	Users UserDirectory
	// Logger receives structured logs; nil discards them. Tokens, passwords
	// and message contents are never logged.
	Logger *slog.Logger

	// MaxContentSize bounds a message's content in bytes. Default 64 KiB.
	MaxContentSize int
	// AuthTimeout is how long a new connection may take to authenticate.
	// Default 10 s.
	AuthTimeout time.Duration
	// IdleTimeout closes a connection from which nothing (no frame, no
	// WebSocket ping) arrived for this long. Default 90 s; clients
	// heartbeat every 30 s.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a connection: a write is given at
	// least nine tenths of it (the deadline is renewed only that often,
	// which saves setting one up per write). Default 10 s.
	WriteTimeout time.Duration
	// SendQueue is how many frames may wait to be written to one connection.
	// A connection whose queue is full is closed: it resyncs when it comes
	// back, so nothing is lost and nobody else waits for it. Default 1024.
	SendQueue int
	// MaxInflight is how many sends of one connection may wait for their
	// commit at once; further frames from that connection are not read
	// until one completes. Default 256.
	MaxInflight int
	// SendRate limits messages per second per connection (burst twice that);
	// beyond it a send fails with SEND_TOO_FAST. Default 200; negative
	// means unlimited.
	SendRate float64

	// DevicePolicy decides what a new login does to older sessions.
	DevicePolicy DevicePolicy
	// MaxSessionsPerUser bounds a user's concurrent sessions under
	// AllowAllDevices. Default 10.
	MaxSessionsPerUser int

	// MaxGroupMembers bounds the members of one group. Default 2000.
	MaxGroupMembers int

	// SystemSender is the sender id of messages the server sends itself
	// (Server.SendSystemMessage). Default "system".
	SystemSender string

	// BeforeSend, if set, is called for every message before it is stored,
	// on the sending connection's goroutine. It may change m's Type,
	// Content, Extra and AttachedInfo; returning an error rejects the send
	// (return an *Error to choose the code the client sees; otherwise
	// PERMISSION_DENIED).
	BeforeSend func(ctx context.Context, m *Message) error
	// AfterSend, if set, is called once for every newly stored message, in
	// seq order per conversation, on one goroutine of its own. A slow hook
	// delays later hooks and, once 4096 are waiting, the commit of new
	// messages: hand long work (webhooks, mobile push) to a queue.
	AfterSend func(m Message)
	// OnConnect and OnDisconnect, if set, are called when a session
	// authenticates and when an authenticated session ends.
	OnConnect    func(s SessionInfo)
	OnDisconnect func(s SessionInfo, err error)
}

// Default values of Config fields.
const (
	DefaultMaxContentSize     = 64 << 10
	DefaultAuthTimeout        = 10 * time.Second
	DefaultIdleTimeout        = 90 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultSendQueue          = 1024
	DefaultMaxInflight        = 256
	DefaultSendRate           = 200
	DefaultMaxSessionsPerUser = 10
	DefaultSystemSender       = "system"
	DefaultMaxGroupMembers    = 2000
)

// withDefaults returns c with every zero field set to its default, or an
// error for a Config that cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.Store == nil {
		return c, errors.New("im: Config.Store is required")
	}
	if c.Authenticator == nil {
		return c, errors.New("im: Config.Authenticator is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&c.MaxContentSize, DefaultMaxContentSize)
	setDefault(&c.AuthTimeout, DefaultAuthTimeout)
	setDefault(&c.IdleTimeout, DefaultIdleTimeout)
	setDefault(&c.WriteTimeout, DefaultWriteTimeout)
	setDefault(&c.SendQueue, DefaultSendQueue)
	setDefault(&c.MaxInflight, DefaultMaxInflight)
	setDefault(&c.SendRate, DefaultSendRate)
	setDefault(&c.MaxSessionsPerUser, DefaultMaxSessionsPerUser)
	setDefault(&c.SystemSender, DefaultSystemSender)
	setDefault(&c.MaxGroupMembers, DefaultMaxGroupMembers)
	if c.MaxContentSize > MaxFrameSize/2 {
		return c, errors.New("im: Config.MaxContentSize must be at most half of MaxFrameSize")
	}
	if c.MaxGroupMembers < 1 {
		return c, errors.New("im: Config.MaxGroupMembers must be positive")
	}
	if !validID(c.SystemSender) {
		return c, errors.New("im: Config.SystemSender is not a valid user id")
	}
	if c.DevicePolicy < AllowAllDevices || c.DevicePolicy > OneSession {
		return c, errors.New("im: unknown Config.DevicePolicy")
	}
	return c, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

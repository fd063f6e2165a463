package im

import (
	"context"
	"time"
)

// Server is an instant-messaging server core. Transports hand it connections
// (ServeConn); it authenticates them, stores and routes messages, and answers
// sync requests.
type Server struct {
	cfg Config
}

// SessionInfo describes one live session.
type SessionInfo struct {
	ID          string
	UserID      string
	Platform    string
	Transport   string
	RemoteAddr  string
	ConnectedAt time.Time
}

// SendRequest is a message sent through the Go API.
type SendRequest struct {
	SenderID       string
	ConversationID string // or ReceiverID for a one-to-one message
	ReceiverID     string
	ClientMsgID    string // optional: generated when empty
	Type           MessageType
	Content        []byte
	Extra          string
}

func NewServer(cfg Config) (*Server, error) { panic("in progress") }

func (s *Server) ServeConn(ctx context.Context, c Conn, info ConnInfo) error { panic("in progress") }

func (s *Server) Authenticate(ctx context.Context, token string) (Identity, error) {
	panic("in progress")
}

func (s *Server) SendMessage(ctx context.Context, req SendRequest) (Message, error) {
	panic("in progress")
}

func (s *Server) SendSystemMessage(ctx context.Context, userID string, typ MessageType, content []byte) (Message, error) {
	panic("in progress")
}

func (s *Server) Kick(userID, reason string) int { panic("in progress") }

func (s *Server) Sessions(userID string) []SessionInfo { panic("in progress") }

// Touch marks c's session as alive; transports call it for keep-alive traffic
// the core does not see, such as WebSocket pings.
func (s *Server) Touch(c Conn) { panic("in progress") }

func (s *Server) Shutdown(ctx context.Context) error { panic("in progress") }

func (s *Server) Close() error { panic("in progress") }

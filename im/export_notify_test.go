package im

// NotifyRecalled lets the external tests queue the notifications of a
// recall, which the recall request makes in production.
func (s *Server) NotifyRecalled(m Message) { s.notifyRecalled(m) }

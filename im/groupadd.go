package im

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Adding someone else to a group puts the group's messages in front of
// them and them in front of its members, so it takes their consent in some
// form: Config.GroupAddPolicy decides, for each user to be added, and
// Config.GroupAddsPerMinute bounds how many users one user adds. Both are
// checked before anything is stored, and either refusal adds nobody.
// Joining a group oneself is JoinPolicy's business, not theirs.

// checkGroupAdds checks that actorID may add users to a group: it charges
// them, less paid (users charged by an earlier attempt of the same call),
// to the actor's GroupAddsPerMinute, then asks GroupAddPolicy about each.
// Users refused by the policy stay charged, so the limit also bounds the
// lookups the policy makes for someone probing whom they may add.
func (s *Server) checkGroupAdds(ctx context.Context, actorID string, users []string, paid int) error {
	if n := len(users) - paid; n > 0 && !s.groupAdds.allowN(actorID, float64(n), time.Now()) {
		return errorf(CodeRateLimited, ErrRateLimited, "adding users to groups too fast: at most %d a minute", s.cfg.GroupAddsPerMinute)
	}
	for _, u := range users {
		err := s.cfg.GroupAddPolicy(ctx, actorID, u)
		if err == nil {
			continue
		}
		if e := (*Error)(nil); errors.As(err, &e) {
			return err
		}
		return &Error{Code: CodePermissionDenied, Msg: fmt.Sprintf("you may not add %s to a group", u), Err: errors.Join(ErrPermissionDenied, err)}
	}
	return nil
}

// sharesMessages is the default GroupAddPolicy: actorID may add userID if
// the two have a one-to-one conversation with at least one message in it,
// whoever sent it.
func (s *Server) sharesMessages(ctx context.Context, actorID, userID string) (err error) {
	defer s.recoverStore("Conversation", &err)
	c, err := s.store.Conversation(ctx, SingleConversationID(actorID, userID))
	switch {
	case err == nil && c.MaxSeq > 0:
		return nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return err
	}
	return errorf(CodePermissionDenied, ErrPermissionDenied, "you may add %s to a group only after the two of you have exchanged a message", userID)
}

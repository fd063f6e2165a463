package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
)

var _ im.FriendStore = (*Store)(nil)

// friendState holds the friendships, requests and blocks, indexed by user
// so that each call touches only the data of the users it names.
type friendState struct {
	friends  map[string]map[string]im.Friend        // user → friend → her side
	outgoing map[string]map[string]im.FriendRequest // from → to →
	incoming map[string]map[string]im.FriendRequest // to → from →
	blocks   map[string]map[string]im.Block         // blocker → blocked →
	// blockedBy mirrors blocks: blocked → blocker.
	blockedBy map[string]map[string]bool
}

// put sets m[a][b] = v, making the inner map if needed.
func put[V any](m *map[string]map[string]V, a, b string, v V) {
	if *m == nil {
		*m = make(map[string]map[string]V)
	}
	in := (*m)[a]
	if in == nil {
		in = make(map[string]V)
		(*m)[a] = in
	}
	in[b] = v
}

// del removes m[a][b] and reports whether it was there.
func del[V any](m map[string]map[string]V, a, b string) bool {
	in := m[a]
	if _, ok := in[b]; !ok {
		return false
	}
	delete(in, b)
	if len(in) == 0 {
		delete(m, a)
	}
	return true
}

func (f *friendState) befriend(a, b string, at time.Time) im.Friend {
	put(&f.friends, a, b, im.Friend{UserID: a, FriendID: b, CreatedAt: at})
	put(&f.friends, b, a, im.Friend{UserID: b, FriendID: a, CreatedAt: at})
	f.dropRequests(a, b)
	return f.friends[a][b]
}

// dropRequests removes the pending requests between a and b, either way.
func (f *friendState) dropRequests(a, b string) {
	del(f.outgoing, a, b)
	del(f.incoming, b, a)
	del(f.outgoing, b, a)
	del(f.incoming, a, b)
}

func (f *friendState) unfriend(a, b string) bool {
	ok := del(f.friends, a, b)
	del(f.friends, b, a)
	return ok
}

func (f *friendState) blocked(a, b string) bool {
	_, ab := f.blocks[a][b]
	_, ba := f.blocks[b][a]
	return ab || ba
}

// checkPair validates a pair of user ids for the friend calls.
func checkPair(ctx context.Context, what, a, b string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s: %w", what, err)
	}
	return im.ValidateFriendPair(a, b)
}

func checkUser(ctx context.Context, what, user string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s: %w", what, err)
	}
	return im.ValidateID("user id", user)
}

// RequestFriend implements im.FriendStore.
func (s *Store) RequestFriend(ctx context.Context, r im.FriendRequest) (im.FriendOutcome, error) {
	if err := checkPair(ctx, "request friend", r.From, r.To); err != nil {
		return 0, err
	}
	if err := im.ValidateFriendText("message", r.Message, im.MaxFriendMessageLen); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.friendState
	if f.blocked(r.From, r.To) {
		return 0, fmt.Errorf("memstore: request friend: %w", im.ErrPermissionDenied)
	}
	if _, ok := f.friends[r.From][r.To]; ok {
		return im.FriendAlready, nil
	}
	if _, ok := f.outgoing[r.To][r.From]; ok {
		f.befriend(r.From, r.To, r.CreatedAt)
		return im.FriendAccepted, nil
	}
	put(&f.outgoing, r.From, r.To, r)
	put(&f.incoming, r.To, r.From, r)
	return im.FriendRequested, nil
}

// AcceptFriend implements im.FriendStore.
func (s *Store) AcceptFriend(ctx context.Context, userID, fromID string, at time.Time) (im.Friend, error) {
	if err := checkPair(ctx, "accept friend", userID, fromID); err != nil {
		return im.Friend{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.friendState
	if _, ok := f.incoming[userID][fromID]; !ok {
		return im.Friend{}, fmt.Errorf("memstore: accept friend: no request from %q: %w", fromID, im.ErrNotFound)
	}
	return f.befriend(userID, fromID, at), nil
}

// RejectFriend implements im.FriendStore.
func (s *Store) RejectFriend(ctx context.Context, userID, fromID string) error {
	if err := checkPair(ctx, "reject friend", userID, fromID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.friendState
	if !del(f.incoming, userID, fromID) {
		return fmt.Errorf("memstore: reject friend: no request from %q: %w", fromID, im.ErrNotFound)
	}
	del(f.outgoing, fromID, userID)
	return nil
}

// CancelFriendRequest implements im.FriendStore.
func (s *Store) CancelFriendRequest(ctx context.Context, userID, toID string) error {
	if err := checkPair(ctx, "cancel friend request", userID, toID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.friendState
	if !del(f.outgoing, userID, toID) {
		return fmt.Errorf("memstore: cancel friend request: no request to %q: %w", toID, im.ErrNotFound)
	}
	del(f.incoming, toID, userID)
	return nil
}

// DeleteFriend implements im.FriendStore.
func (s *Store) DeleteFriend(ctx context.Context, userID, friendID string) error {
	if err := checkPair(ctx, "delete friend", userID, friendID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.friendState.unfriend(userID, friendID) {
		return fmt.Errorf("memstore: delete friend: %w", im.ErrNotFound)
	}
	return nil
}

// SetFriendRemark implements im.FriendStore.
func (s *Store) SetFriendRemark(ctx context.Context, userID, friendID, remark string) (im.Friend, error) {
	if err := checkPair(ctx, "set friend remark", userID, friendID); err != nil {
		return im.Friend{}, err
	}
	if err := im.ValidateFriendText("remark", remark, im.MaxFriendRemarkLen); err != nil {
		return im.Friend{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fr, ok := s.friendState.friends[userID][friendID]
	if !ok {
		return im.Friend{}, fmt.Errorf("memstore: set friend remark: %w", im.ErrNotFound)
	}
	fr.Remark = remark
	s.friendState.friends[userID][friendID] = fr
	return fr, nil
}

// Friends implements im.FriendStore.
func (s *Store) Friends(ctx context.Context, userID string) ([]im.Friend, error) {
	if err := checkUser(ctx, "friends", userID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.friendState.friends[userID]
	out := make([]im.Friend, 0, len(m))
	for _, fr := range m {
		out = append(out, fr)
	}
	slices.SortFunc(out, func(a, b im.Friend) int { return strings.Compare(a.FriendID, b.FriendID) })
	return out, nil
}

// FriendRequests implements im.FriendStore.
func (s *Store) FriendRequests(ctx context.Context, userID string) (incoming, outgoing []im.FriendRequest, err error) {
	if err := checkUser(ctx, "friend requests", userID); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := func(m map[string]im.FriendRequest, other func(im.FriendRequest) string) []im.FriendRequest {
		out := make([]im.FriendRequest, 0, len(m))
		for _, r := range m {
			out = append(out, r)
		}
		slices.SortFunc(out, func(a, b im.FriendRequest) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(other(a), other(b)))
		})
		return out
	}
	incoming = list(s.friendState.incoming[userID], func(r im.FriendRequest) string { return r.From })
	outgoing = list(s.friendState.outgoing[userID], func(r im.FriendRequest) string { return r.To })
	return incoming, outgoing, nil
}

// Relation implements im.FriendStore.
func (s *Store) Relation(ctx context.Context, userID, otherID string) (im.Relation, error) {
	if err := checkPair(ctx, "relation", userID, otherID); err != nil {
		return im.Relation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.friendState
	r := im.Relation{UserID: userID, OtherID: otherID}
	r.Friend, r.Friends = f.friends[userID][otherID]
	_, r.RequestSent = f.outgoing[userID][otherID]
	_, r.RequestReceived = f.incoming[userID][otherID]
	_, r.Blocking = f.blocks[userID][otherID]
	_, r.BlockedBy = f.blocks[otherID][userID]
	return r, nil
}

// Block implements im.FriendStore.
func (s *Store) Block(ctx context.Context, userID, blockedID string, at time.Time) error {
	if err := checkPair(ctx, "block", userID, blockedID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.friendState
	if _, ok := f.blocks[userID][blockedID]; ok {
		return nil
	}
	put(&f.blocks, userID, blockedID, im.Block{BlockerID: userID, BlockedID: blockedID, CreatedAt: at})
	put(&f.blockedBy, blockedID, userID, true)
	f.unfriend(userID, blockedID)
	f.dropRequests(userID, blockedID)
	return nil
}

// Unblock implements im.FriendStore.
func (s *Store) Unblock(ctx context.Context, userID, blockedID string) error {
	if err := checkPair(ctx, "unblock", userID, blockedID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	del(s.friendState.blocks, userID, blockedID)
	del(s.friendState.blockedBy, blockedID, userID)
	return nil
}

// Blocks implements im.FriendStore.
func (s *Store) Blocks(ctx context.Context, userID string) ([]im.Block, error) {
	if err := checkUser(ctx, "blocks", userID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.friendState.blocks[userID]
	out := make([]im.Block, 0, len(m))
	for _, b := range m {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b im.Block) int { return strings.Compare(a.BlockedID, b.BlockedID) })
	return out, nil
}

// RemoveUserRelations implements im.FriendStore.
func (s *Store) RemoveUserRelations(ctx context.Context, userID string) error {
	if err := checkUser(ctx, "remove user relations", userID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.friendState
	for other := range f.friends[userID] {
		del(f.friends, other, userID)
	}
	delete(f.friends, userID)
	for to := range f.outgoing[userID] {
		del(f.incoming, to, userID)
	}
	delete(f.outgoing, userID)
	for from := range f.incoming[userID] {
		del(f.outgoing, from, userID)
	}
	delete(f.incoming, userID)
	for blocked := range f.blocks[userID] {
		del(f.blockedBy, blocked, userID)
	}
	delete(f.blocks, userID)
	for blocker := range f.blockedBy[userID] {
		del(f.blocks, blocker, userID)
	}
	delete(f.blockedBy, userID)
	return nil
}

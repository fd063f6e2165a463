package im

import (
	"math"
	"time"
)

// ConversationQuery asks Server.Conversations for one page of a user's
// conversation list.
type ConversationQuery struct {
	// Limit bounds the conversations of the page: 0 means
	// DefaultConversationPage, more than MaxConversationPage means
	// MaxConversationPage, a negative value is refused.
	Limit int
	// Cursor is ConversationPage.Next of the previous page, to go on with
	// the same listing; empty for its first page.
	Cursor string
	// Since, if not zero, is ConversationPage.Version of an earlier
	// listing: the page holds only the conversations updated after it,
	// the hidden ones included (with Hidden set) so that a client drops
	// them. With a Cursor it is zero or the Since the listing began with.
	Since time.Time
}

// Sizes of a page of the conversation list.
const (
	DefaultConversationPage = 50
	MaxConversationPage     = 200
)

// ConversationPage is one page of a user's conversation list.
type ConversationPage struct {
	// Conversations are sorted pinned first, then by UpdatedAt, newest
	// first, then by id.
	Conversations []ConversationEntry
	// Next is the cursor of the next page, empty on the last one. It
	// names the place in the order where this page ended, not an offset,
	// so messages that arrive while a client pages never make it skip a
	// conversation that stays where it was; one that moves up past the
	// cursor meanwhile is in the next incremental listing (Since).
	Next string
	// Version is what to pass as ConversationQuery.Since later, to list
	// what changed after this listing: the time the listing began, less
	// a margin for the clocks of several processes sharing the Store, so
	// that a few conversations may come again. Every page of one listing
	// carries the same.
	Version time.Time
	// HasReadState tells whether Read, Unread and Mentioned are known.
	// On a Store without ReadStateStore they are not, and are 0 and
	// false: the Server does not know what a user has read, and 0 unread
	// would claim that she read everything.
	HasReadState bool
}

// ConversationEntry is one conversation of a user's list, as she sees it.
type ConversationEntry struct {
	ID   string
	Type ConversationType
	// LastMessage is the newest message (a tombstone if recalled), nil
	// when there is none she may read: the conversation is empty, or she
	// cleared it.
	LastMessage *Message
	MaxSeq      int64
	// Read is her read position; Unread counts the messages after it
	// she may read (see Unread): neither those before her first readable
	// seq in a group nor those she cleared.
	Read, Unread int64
	// Mentioned is set while a message she has not read mentions her.
	Mentioned bool
	// Her own settings (ConversationSettings).
	Pinned, Muted bool
	// Hidden is set on a hidden conversation (MaxSeq at most her
	// HiddenUpTo), which only a listing with Since includes.
	Hidden      bool
	ClearedUpTo int64
	// UpdatedAt is the latest of the last message's CreatedAt, when her
	// settings last changed and when her read state last moved: what the
	// list is sorted by, and what Since compares.
	UpdatedAt time.Time
}

// UpToNewest, as SettingsChange.HiddenUpTo or ClearedUpTo given to
// Server.UpdateConversationSettings, means the newest message of the
// conversation as the Server reads it when asked: one that arrives
// meanwhile is neither hidden nor cleared. Any seq above the newest means
// the same.
const UpToNewest int64 = math.MaxInt64

// conversationVersionMargin is taken off the time a listing began to make
// its Version: UpdatedAt comes from the clocks of every process sharing
// the Store (a message's CreatedAt is its committing Server's), which may
// be a little behind this one's.
const conversationVersionMargin = 5 * time.Second

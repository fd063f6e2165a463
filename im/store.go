package im

import "context"

// Store is where a Server keeps everything durable. It is composed of small
// per-area interfaces so that the core depends on narrow ones and a Store for
// an in-house database can be written and tested area by area;
// store/storetest checks an implementation against every rule written here.
// It holds only what every Server calls; further areas are optional
// interfaces (Pinger, SyncStore; see "Optional Store capabilities" in the
// package documentation).
//
// All methods are safe for concurrent use. They honour ctx cancellation where
// they block. Errors for missing data satisfy errors.Is(err, ErrNotFound),
// duplicates ErrConflict, malformed input ErrInvalidArgument, stored data
// found damaged ErrCorrupt (a *CorruptError where the message is known:
// never the damaged data itself); backend errors are wrapped with %w. The
// Server never closes the Store it was given.
//
// Input rules every Store enforces, so that nothing is stored half-way: each
// AppendRequest passes ValidateAppend; a limit below 1 is
// ErrInvalidArgument. Ids never contain control characters,
// so a Store may use 0x00 as a separator. Times keep at least microsecond
// precision; a nil and an empty Content are the same.
type Store interface {
	MessageStore
	ConversationStore
	GroupStore
}

// AppendRequest is one message to append.
type AppendRequest struct {
	// Message to store. The Store assigns Seq; every other field is stored
	// as given.
	Message Message
	// Members are recorded as the members of the conversation when this
	// append creates it (its first message). Later appends ignore them.
	Members []string
	// MemberOf, if set, is a group id: the message is stored only if
	// Message.SenderID is a member of that group when the commit happens,
	// checked inside the commit itself. Otherwise the request's result has
	// an Err wrapping ErrPermissionDenied (also when there is no such
	// group), and the rest of the batch is unaffected. The same check
	// refuses, with an Err wrapping ErrMuted, a sender whose
	// GroupMember.MutedUntil is after Message.CreatedAt, and one below
	// RoleAdmin when the group has MuteAll.
	MemberOf string
}

// AppendResult is the outcome of one AppendRequest.
type AppendResult struct {
	// Message as stored, with its Seq. For a duplicate, the message that was
	// stored first, unchanged.
	Message Message
	// Duplicate is set when (SenderID, ClientMsgID) was already stored, by an
	// earlier call or earlier in the same batch. Nothing was written for it.
	Duplicate bool
	// Err is set when this request was refused (wrapping
	// ErrInvalidArgument, or ErrPermissionDenied for a MemberOf check);
	// nothing was written for it, and the rest of the batch is unaffected.
	Err error
	// GroupVersion is, for a request with MemberOf, the Version of that
	// group the commit saw (0 if there was none), and for a group's
	// notice the group's Version after the change. A Server learns from
	// it that another server changed the group.
	GroupVersion int64
}

// MessageStore keeps messages with one gap-free sequence per conversation.
type MessageStore interface {
	// AppendMessages stores a batch of messages in one atomic, durable
	// commit and returns one result per request, in order. Each stored
	// message takes the next seq of its conversation (1 for the first), in
	// batch order, so seqs are gap-free and unique per conversation even
	// when several callers, or several processes sharing a database, append
	// at once. Dedup by (SenderID, ClientMsgID) happens in the same commit.
	//
	// It returns only once the commit is durable (fsync'd or committed). A
	// non-nil error means nothing of the batch was stored — except when the
	// connection to a networked database broke during the commit itself,
	// when the outcome is unknown; a retry is safe either way, because of
	// dedup. Callers batch concurrent sends themselves (group commit); one
	// call is one commit.
	AppendMessages(ctx context.Context, batch []AppendRequest) ([]AppendResult, error)

	// Messages returns the messages of conversation conv whose seq lies in
	// [from, to], in ascending seq order, at most limit of them. to <= 0
	// means no upper bound. A conversation with no messages yields an empty
	// slice, not an error.
	Messages(ctx context.Context, conv string, from, to int64, limit int) ([]Message, error)

	// MessagesBefore returns up to limit messages of conv with seq < before
	// (before <= 0 means from the newest), in ascending seq order: the page
	// of history just older than what a client holds.
	MessagesBefore(ctx context.Context, conv string, before int64, limit int) ([]Message, error)
}

// ConversationStore answers which conversations exist and who is in them.
type ConversationStore interface {
	// Conversation returns the summary of conversation id; ErrNotFound if no
	// message was ever appended to it.
	Conversation(ctx context.Context, id string) (Conversation, error)

	// UserConversations returns every conversation userID is a member of,
	// in no particular order. A user with none yields an empty slice.
	UserConversations(ctx context.Context, userID string) ([]Conversation, error)
}

// SyncStore is an optional Store capability: the reads a BATCH_SYNC needs,
// in one round trip each however many conversations and groups the user
// has. A Server uses it when its Store has it, and otherwise asks
// UserConversations, UserGroups, then Conversation once per group and
// Messages once per conversation that moved. storetest checks that its
// answers equal those of the required methods.
type SyncStore interface {
	// SyncConversations returns every conversation userID reads, each
	// once, in no particular order: those UserConversations returns, and
	// the conversation of each group UserGroups returns that has messages.
	// A user with none yields an empty slice. It reads one consistent
	// snapshot (one transaction or one statement): a group's conversation
	// is listed only with a MaxSeq it had while userID was a member, so the
	// Server reads its messages up to that seq without checking the
	// membership again. Each group's conversation carries ReadFrom, the
	// first seq userID may read (FirstReadableSeq of the group and her
	// membership in that snapshot), so that the Server reads nothing
	// older without a read per group; the Server reads ReadFrom itself,
	// one group at a time, for a group's conversation listed with 0.
	SyncConversations(ctx context.Context, userID string) ([]Conversation, error)

	// MessageRanges returns, for each range, what Messages(ctx,
	// r.ConversationID, r.From, r.To, limit) would return: out[i] belongs
	// to ranges[i], and len(out) == len(ranges). A range without messages
	// yields an empty or nil slice. ErrInvalidArgument for a limit below 1.
	// The Server passes at most a few hundred ranges per call.
	MessageRanges(ctx context.Context, ranges []MessageRange, limit int) ([][]Message, error)
}

// MessageRangeScanner is an optional capability of a SyncStore: the
// messages of MessageRanges for a caller that reads them once, so that the
// Store can reuse their memory from one call to the next instead of
// allocating every page anew. A Server catching a client up uses it when
// its Store has it. storetest checks that it reads what MessageRanges
// returns.
type MessageRangeScanner interface {
	// ScanMessageRanges reads what MessageRanges(ctx, ranges, limit)
	// returns and calls fn once per range, in the order of ranges, with i
	// the range's index and page its messages (empty for a range without
	// any). page, and the Content of its messages, are the Store's again
	// once fn returns: fn must neither keep nor modify them; it may keep
	// the strings. fn is called after the Store's read has ended, so it
	// may call the Store. An error from fn stops the scan and is returned
	// as it is; ErrInvalidArgument for a limit below 1, before fn is
	// called.
	ScanMessageRanges(ctx context.Context, ranges []MessageRange, limit int, fn func(i int, page []Message) error) error
}

// MessageRange selects the messages of conversation ConversationID whose
// seq lies in [From, To]; To <= 0 means no upper bound.
type MessageRange struct {
	ConversationID string
	From, To       int64
}

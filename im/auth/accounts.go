package auth

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// Defaults and limits of AccountsConfig and of account fields.
const (
	DefaultBcryptCost    = 12
	MinBcryptCost        = 10
	DefaultLoginAttempts = 5
	DefaultLoginWindow   = 15 * time.Minute

	DefaultClientAttempts   = 30
	DefaultSubnetAttempts   = 120
	DefaultClientWindow     = time.Minute
	DefaultUsernameFailures = 20
	DefaultUsernameDelay    = 2 * time.Second

	MinUsernameLength = 3
	MaxUsernameLength = 32
	MinPasswordBytes  = 8
	MaxPasswordBytes  = 72 // bcrypt ignores what follows; refusing is honest
	MaxNicknameLength = 64 // in characters (runes)
)

// AccountsConfig configures Accounts. NewAccounts copies it.
type AccountsConfig struct {
	// Store keeps the accounts. Required.
	Store AccountStore
	// Tokens issues the token Login returns. Required.
	Tokens *JWT
	// BcryptCost is the bcrypt work factor for new password hashes.
	// Default DefaultBcryptCost; values below MinBcryptCost are refused.
	BcryptCost int
	// LoginAttempts is how many failed logins one username may have within
	// LoginWindow before further attempts are refused. Default
	// DefaultLoginAttempts.
	LoginAttempts int
	// LoginWindow: see LoginAttempts. Default DefaultLoginWindow.
	LoginWindow time.Duration
	// ClientAttempts is how many logins and registrations one client
	// address may make within ClientWindow; SubnetAttempts, how many its
	// subnet (/24 for IPv4, /64 for IPv6) may. Both are checked before any
	// store read or bcrypt work. They apply only to calls whose ctx carries
	// the client's address (WithClientAddr), as the HTTP API's do.
	// Defaults DefaultClientAttempts, DefaultSubnetAttempts.
	ClientAttempts int
	SubnetAttempts int
	// ClientWindow: see ClientAttempts. Default DefaultClientWindow.
	ClientWindow time.Duration
	// UsernameFailures is how many failed logins one username may have
	// within LoginWindow, from all addresses together, before each further
	// attempt for it waits UsernameDelay before its password is checked.
	// It slows a guesser spread over many addresses without locking the
	// owner out. Defaults DefaultUsernameFailures, DefaultUsernameDelay.
	UsernameFailures int
	UsernameDelay    time.Duration
	// MaxTracked bounds the keys each of the login limits holds (client
	// addresses, subnets, username and address pairs, usernames). Default
	// DefaultMaxTracked.
	MaxTracked int
	// Now returns the current time; default time.Now. For tests.
	Now func() time.Time
}

// Accounts registers and logs in built-in accounts. It implements
// im.UserDirectory. It is safe for concurrent use.
type Accounts struct {
	store  AccountStore
	tokens *JWT
	// versions is store's TokenVersions, if it has them: Login issues
	// tokens at the user's current version, so that a Guard accepts them
	// after a revocation.
	versions TokenVersions
	// searcher, updater and revoked are store's optional parts, nil when
	// it lacks them: profiles and search need searcher, profile changes,
	// password changes and deletions need updater, Logout needs revoked.
	searcher AccountSearcher
	updater  AccountUpdater
	revoked  RevokedTokens
	// writes serialise, per user (by hash), the read-check-write of
	// profile changes and deletions in this process, so that a profile
	// change does not land on an account just deleted.
	writes [64]sync.Mutex
	cost   int
	now    func() time.Time
	limit  *limiter // failures per (username, client address)
	// client and subnet count attempts per client address and subnet;
	// userFails counts failures per username from all addresses.
	client, subnet, userFails *limiter
	userDelay                 time.Duration
	// dummyHash is compared against when the username is unknown, so that
	// an unknown user costs the same bcrypt work as a wrong password.
	dummyHash []byte

	// hashing bounds the bcrypt computations running at once to the
	// number of CPUs: a burst of registrations or logins then queues
	// instead of starving message traffic of CPU.
	hashing chan struct{}

	// known caches user ids that exist, with when each was read.
	// UserExists runs for every message (im.Config.Users), and an account
	// stops existing only when it is deleted, which DeleteAccount removes
	// from here; a yes is read again after knownTTL, for deletions made
	// by another process sharing the store. A no is not cached, since the
	// user may register any moment.
	mu    sync.RWMutex
	known map[string]time.Time
}

// knownTTL is how long UserExists trusts a yes it read: how long another
// process may go on accepting messages for an account deleted elsewhere.
const knownTTL = time.Minute

// maxKnown bounds the cache of existing user ids; when it is full it starts
// over, which costs a store read per user once.
const maxKnown = 1 << 17

var (
	_ im.UserDirectory = (*Accounts)(nil)
	_ im.UserProfiles  = (*Accounts)(nil)
	_ im.ProfileEditor = (*Accounts)(nil)
)

// LoginResult is what a successful Login returns (account.LoginResult).
type LoginResult = account.LoginResult

// NewAccounts returns Accounts configured by cfg, or an error for a
// configuration that cannot work.
func NewAccounts(cfg AccountsConfig) (*Accounts, error) {
	if cfg.Store == nil {
		return nil, errors.New("auth: AccountsConfig.Store is required")
	}
	if cfg.Tokens == nil {
		return nil, errors.New("auth: AccountsConfig.Tokens is required")
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = DefaultBcryptCost
	}
	if cfg.BcryptCost < MinBcryptCost || cfg.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("auth: AccountsConfig.BcryptCost must be %d to %d", MinBcryptCost, bcrypt.MaxCost)
	}
	if cfg.LoginAttempts < 0 || cfg.LoginWindow < 0 {
		return nil, errors.New("auth: AccountsConfig.LoginAttempts and LoginWindow must not be negative")
	}
	if cfg.LoginAttempts == 0 {
		cfg.LoginAttempts = DefaultLoginAttempts
	}
	if cfg.LoginWindow == 0 {
		cfg.LoginWindow = DefaultLoginWindow
	}
	if cfg.ClientAttempts < 0 || cfg.SubnetAttempts < 0 || cfg.ClientWindow < 0 ||
		cfg.UsernameFailures < 0 || cfg.UsernameDelay < 0 || cfg.MaxTracked < 0 {
		return nil, errors.New("auth: AccountsConfig's login limits must not be negative")
	}
	cfg.ClientAttempts = orDefault(cfg.ClientAttempts, DefaultClientAttempts)
	cfg.SubnetAttempts = orDefault(cfg.SubnetAttempts, DefaultSubnetAttempts)
	cfg.ClientWindow = orDefault(cfg.ClientWindow, DefaultClientWindow)
	cfg.UsernameFailures = orDefault(cfg.UsernameFailures, DefaultUsernameFailures)
	cfg.UsernameDelay = orDefault(cfg.UsernameDelay, DefaultUsernameDelay)
	cfg.MaxTracked = orDefault(cfg.MaxTracked, DefaultMaxTracked)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	versions, _ := cfg.Store.(TokenVersions)
	searcher, _ := cfg.Store.(AccountSearcher)
	updater, _ := cfg.Store.(AccountUpdater)
	revoked, _ := cfg.Store.(RevokedTokens)
	return &Accounts{
		store:     cfg.Store,
		versions:  versions,
		searcher:  searcher,
		updater:   updater,
		revoked:   revoked,
		tokens:    cfg.Tokens,
		cost:      cfg.BcryptCost,
		now:       cfg.Now,
		limit:     newLimiter(cfg.LoginAttempts, cfg.LoginWindow, cfg.MaxTracked),
		client:    newLimiter(cfg.ClientAttempts, cfg.ClientWindow, cfg.MaxTracked),
		subnet:    newLimiter(cfg.SubnetAttempts, cfg.ClientWindow, cfg.MaxTracked),
		userFails: newLimiter(cfg.UsernameFailures, cfg.LoginWindow, cfg.MaxTracked),
		userDelay: cfg.UsernameDelay,
		dummyHash: dummyHash(cfg.BcryptCost),
		hashing:   make(chan struct{}, runtime.GOMAXPROCS(0)),
	}, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Tracked returns how many keys the login limits hold in all, for metrics:
// it never exceeds four times AccountsConfig.MaxTracked.
func (a *Accounts) Tracked() int {
	return a.limit.size() + a.client.size() + a.subnet.size() + a.userFails.size()
}

// admit charges an attempt to the client address in ctx and its subnet,
// and refuses it if either is over its limit. Without an address it admits.
func (a *Accounts) admit(ctx context.Context) error {
	addr, ok := ClientAddr(ctx)
	if !ok {
		return nil
	}
	now := a.now()
	if ok, wait := a.client.acquire(addr.String(), now); !ok {
		return account.Throttled("too many attempts from your address, try again later", wait)
	}
	if ok, wait := a.subnet.acquire(subnetOf(addr).String(), now); !ok {
		return account.Throttled("too many attempts from your network, try again later", wait)
	}
	return nil
}

// acquireHash waits for a turn to run bcrypt, or for ctx to end.
func (a *Accounts) acquireHash(ctx context.Context) error {
	select {
	case a.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Accounts) releaseHash() { <-a.hashing }

// Register creates an account and returns it. username is 3 to 32
// characters from A-Z, a-z, 0-9, '_', '.', '-' and is matched exactly
// (case-sensitive) at login; password is 8 to 72 bytes; nickname is at most
// 64 characters of printable UTF-8 and defaults to username. The account gets
// a new random user id, so the username is not the id other users see.
//
// A username that is taken gives an error wrapping im.ErrConflict; input
// that breaks the rules, im.ErrInvalidArgument.
func (a *Accounts) Register(ctx context.Context, username, password, nickname string) (Account, error) {
	if err := checkUsername(username); err != nil {
		return Account{}, err
	}
	if err := checkPassword(password); err != nil {
		return Account{}, err
	}
	if nickname == "" {
		nickname = username
	}
	if err := checkNickname(nickname); err != nil {
		return Account{}, err
	}
	if err := a.admit(ctx); err != nil {
		return Account{}, err
	}
	// Checked before hashing so that a taken name costs no bcrypt work;
	// CreateAccount below still decides races.
	switch _, err := a.store.AccountByUsername(ctx, username); {
	case err == nil:
		return Account{}, usernameTaken()
	case !errors.Is(err, im.ErrNotFound):
		return Account{}, fmt.Errorf("auth: look up username: %w", err)
	}
	if err := a.acquireHash(ctx); err != nil {
		return Account{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.cost)
	a.releaseHash()
	if err != nil {
		return Account{}, fmt.Errorf("auth: hash password: %w", err)
	}
	acc := Account{
		Username:     username,
		Nickname:     nickname,
		PasswordHash: hash,
		CreatedAt:    a.now().UTC(),
	}
	// A fresh id colliding is astronomically unlikely, but the store
	// reports it as the same ErrConflict as a taken username, so tell the
	// two apart rather than blame the user.
	for range 3 {
		acc.UserID = newUserID()
		err = a.store.CreateAccount(ctx, acc)
		if !errors.Is(err, im.ErrConflict) {
			break
		}
		if _, lookErr := a.store.AccountByUsername(ctx, username); lookErr == nil {
			return Account{}, usernameTaken()
		}
	}
	if err != nil {
		return Account{}, fmt.Errorf("auth: create account: %w", err)
	}
	return acc, nil
}

// Login checks username and password and returns a token for the account,
// at the user's current token version when the store keeps them
// (TokenVersions).
//
// A wrong password, an unknown username and a disabled account all give the
// same error, wrapping im.ErrUnauthenticated, after the same bcrypt work.
// After LoginAttempts failures for one username from one client address
// (WithClientAddr; without one, from anywhere) within LoginWindow, further
// attempts for it from there give an error wrapping im.ErrRateLimited,
// without checking the password, until the window has passed; a successful
// login clears that count. The per-address, per-subnet and per-username
// limits of the package documentation apply as well.
func (a *Accounts) Login(ctx context.Context, username, password string) (LoginResult, error) {
	if checkUsername(username) != nil {
		// No account can have this name, and the rules are public, so
		// answering at once reveals nothing; not tracking it keeps junk
		// out of the limiter.
		return LoginResult{}, badCredentials()
	}
	if err := a.admit(ctx); err != nil {
		return LoginResult{}, err
	}
	// Failures are counted per username and client address, so a guesser
	// locks only their own address out of the account, never its owner.
	// Without an address in ctx the key is the username alone.
	key := username + "\x00"
	if addr, ok := ClientAddr(ctx); ok {
		key += addr.String()
	}
	// Charged before the password is checked, so that many concurrent
	// guesses cannot all slip in before the first failure is counted.
	if ok, wait := a.limit.acquire(key, a.now()); !ok {
		return LoginResult{}, account.Throttled("too many failed logins, try again later", wait)
	}
	// Past the ceiling of failures from all addresses, every attempt for
	// the username waits before it is checked: guessing from many
	// addresses slows down, and the owner still gets in.
	if a.userFails.exceeded(username, a.now()) {
		t := time.NewTimer(a.userDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			a.limit.release(key)
			return LoginResult{}, ctx.Err()
		}
	}
	acc, err := a.store.AccountByUsername(ctx, username)
	switch {
	case errors.Is(err, im.ErrNotFound):
		acc = Account{PasswordHash: a.dummyHash, Disabled: true}
	case err != nil:
		// Not the user's fault: give the attempt back.
		a.limit.release(key)
		return LoginResult{}, fmt.Errorf("auth: look up username: %w", err)
	}
	hash := acc.PasswordHash
	if len(hash) == 0 {
		hash = a.dummyHash
	}
	pw := []byte(password)
	if len(pw) > MaxPasswordBytes {
		// Cannot match (Register refuses such passwords); hash the
		// allowed prefix so the work is the same.
		pw = pw[:MaxPasswordBytes]
		acc.Disabled = true
	}
	if err := a.acquireHash(ctx); err != nil {
		a.limit.release(key)
		return LoginResult{}, err
	}
	mismatch := bcrypt.CompareHashAndPassword(hash, pw) != nil
	a.releaseHash()
	if mismatch || acc.Disabled {
		a.userFails.acquire(username, a.now())
		return LoginResult{}, badCredentials()
	}
	a.limit.reset(key)
	var version int64
	if a.versions != nil {
		if version, err = a.versions.TokenVersion(ctx, acc.UserID); err != nil {
			return LoginResult{}, fmt.Errorf("auth: read token version: %w", err)
		}
	}
	token, expires, err := a.tokens.IssueVersion(acc.UserID, version)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{UserID: acc.UserID, Token: token, Expires: expires}, nil
}

// UserExists reports whether an account with userID exists; a disabled
// account exists, a deleted one does not. An id that cannot be valid
// yields false. Answers of yes are cached, so a conversation's messages
// cost one store read a minute, not one each; DeleteAccount forgets its
// user here, while another process sharing the store may answer yes for a
// deleted account for up to a minute.
func (a *Accounts) UserExists(ctx context.Context, userID string) (bool, error) {
	a.mu.RLock()
	at, ok := a.known[userID]
	a.mu.RUnlock()
	if ok && a.now().Sub(at) < knownTTL {
		return true, nil
	}
	if im.ValidateID("user id", userID) != nil {
		return false, nil
	}
	acc, err := a.store.Account(ctx, userID)
	switch {
	case err == nil && acc.Deleted:
		return false, nil
	case err == nil:
		a.mu.Lock()
		if a.known == nil || len(a.known) >= maxKnown {
			a.known = make(map[string]time.Time)
		}
		a.known[userID] = a.now()
		a.mu.Unlock()
		return true, nil
	case errors.Is(err, im.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("auth: look up user: %w", err)
}

func badCredentials() error {
	return &im.Error{
		Code: im.CodeUnauthenticated,
		Msg:  "invalid username or password",
		Err:  im.ErrUnauthenticated,
	}
}

func usernameTaken() error {
	return &im.Error{Code: im.CodeInvalidArgument, Msg: "username is taken", Err: im.ErrConflict}
}

func invalid(msg string) error {
	return &im.Error{Code: im.CodeInvalidArgument, Msg: msg, Err: im.ErrInvalidArgument}
}

func checkUsername(s string) error {
	if len(s) < MinUsernameLength || len(s) > MaxUsernameLength {
		return invalid(fmt.Sprintf("username must be %d to %d characters", MinUsernameLength, MaxUsernameLength))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return invalid("username may contain only letters, digits, '_', '.' and '-'")
		}
	}
	return nil
}

func checkPassword(s string) error {
	if len(s) < MinPasswordBytes || len(s) > MaxPasswordBytes {
		return invalid(fmt.Sprintf("password must be %d to %d bytes", MinPasswordBytes, MaxPasswordBytes))
	}
	return nil
}

func checkNickname(s string) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNicknameLength {
		return invalid(fmt.Sprintf("nickname must be at most %d characters of valid UTF-8", MaxNicknameLength))
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return invalid("nickname must not contain control characters")
	}
	return im.ValidateName("nickname", s)
}

// newUserID returns "u" and 16 random characters of lowercase base32
// (80 bits): URL-safe, and free of '_', which joins ids into conversation
// ids.
func newUserID() string {
	var b [10]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return "u" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// dummyHash returns a well-formed bcrypt hash at cost that no known
// password matches. Written by hand, it costs nothing at startup; comparing
// against it costs what a real hash of that cost does.
func dummyHash(cost int) []byte {
	// 22 characters of salt and 31 of hash in bcrypt's base64 alphabet.
	const saltAndHash = "abcdefghijklmnopqrstuu" + "NotARealHashOnlyForTimingLogins"
	return fmt.Appendf(nil, "$2a$%02d$%s", cost, saltAndHash)
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imserver/imserver/im/auth"
)

// benchUser is an account imbench connects as.
type benchUser struct {
	Username string    `json:"username,omitempty"`
	Password string    `json:"password,omitempty"`
	UserID   string    `json:"userID"`
	Token    string    `json:"token"`
	Expires  time.Time `json:"expires"`
}

// userSource makes the users a scenario needs: registered through the HTTP
// API (bcrypt on the server: slow, so in parallel and cached in a file), or,
// for scenarios that never message anyone, synthetic ids with tokens minted
// from the server's JWT secret. It also creates the group scenario's
// groups (createGroups, in group.go).
type userSource struct {
	httpBase string
	runID    string
	parallel int
	file     string    // users cache; "" for none
	minter   *auth.JWT // nil without -jwt-secret
	client   *http.Client
	log      func(format string, args ...any)
}

// tokenMargin is how long a cached token must still be valid to be used.
const tokenMargin = time.Hour

// registered returns n registered users, taken from the cache file first.
// New ones are registered and logged in (or given minted tokens) with
// bounded parallelism and appended to the cache.
func (s *userSource) registered(ctx context.Context, n int) ([]benchUser, error) {
	cached, err := s.load()
	if err != nil {
		return nil, err
	}
	users := make([]benchUser, 0, n)
	for _, u := range cached {
		if len(users) == n {
			break
		}
		if time.Until(u.Expires) < tokenMargin {
			if u, err = s.refresh(ctx, u); err != nil {
				return nil, err
			}
		}
		users = append(users, u)
	}
	missing := n - len(users)
	if missing == 0 {
		return users, nil
	}
	s.log("registering %d users through %s (%d at a time; bcrypt makes this slow: -users-file keeps them for the next run)", missing, s.httpBase, s.parallel)
	fresh := make([]benchUser, missing)
	var (
		next, done atomic.Int64
		firstErr   error
		emu        sync.Mutex
		wg         sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	for range max(1, min(s.parallel, missing)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= missing || ctx.Err() != nil {
					return
				}
				u, err := s.register(ctx, fmt.Sprintf("bench-%s-%d", s.runID, len(users)+i))
				if err != nil {
					emu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					emu.Unlock()
					cancel()
					return
				}
				fresh[i] = u
				if d := done.Add(1); d%100 == 0 {
					s.log("registered %d/%d users (%.0f/s)", d, missing, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.save(fresh); err != nil {
		return nil, err
	}
	return append(users, fresh...), nil
}

// synthetic returns n users that exist only in their tokens, which the
// server accepts as long as nobody messages them.
func (s *userSource) synthetic(n int) ([]benchUser, error) {
	if s.minter == nil {
		return nil, errors.New("synthetic users need -jwt-secret or -data")
	}
	users := make([]benchUser, n)
	for i := range users {
		id := fmt.Sprintf("bench-%s-%d", s.runID, i)
		tok, exp, err := s.minter.Issue(id)
		if err != nil {
			return nil, err
		}
		users[i] = benchUser{UserID: id, Token: tok, Expires: exp}
	}
	return users, nil
}

func (s *userSource) register(ctx context.Context, username string) (benchUser, error) {
	u := benchUser{Username: username, Password: "bench-" + s.runID + "-pw"}
	var reg struct {
		UserID string `json:"userID"`
	}
	if err := s.call(ctx, "/api/auth/register", "", map[string]string{"username": u.Username, "password": u.Password, "nickname": u.Username}, &reg); err != nil {
		return u, fmt.Errorf("register %s: %w", username, err)
	}
	u.UserID = reg.UserID
	return s.refresh(ctx, u)
}

// refresh gives u a new token: minted when the secret is known (no
// bcrypt on the server), else by logging in.
func (s *userSource) refresh(ctx context.Context, u benchUser) (benchUser, error) {
	if s.minter != nil {
		tok, exp, err := s.minter.Issue(u.UserID)
		if err != nil {
			return u, err
		}
		u.Token, u.Expires = tok, exp
		return u, nil
	}
	if u.Username == "" {
		return u, fmt.Errorf("cached user %s has expired and no password: delete the -users-file", u.UserID)
	}
	var login struct {
		Token     string `json:"token"`
		UserID    string `json:"userID"`
		ExpiresAt int64  `json:"expiresAt"`
	}
	if err := s.call(ctx, "/api/auth/login", "", map[string]string{"username": u.Username, "password": u.Password, "platform": "imbench"}, &login); err != nil {
		return u, fmt.Errorf("login %s: %w", u.Username, err)
	}
	u.Token, u.UserID, u.Expires = login.Token, login.UserID, time.UnixMilli(login.ExpiresAt)
	return u, nil
}

// call posts a JSON body to the HTTP API, as the user token is for unless
// it is empty, and decodes the envelope's data.
func (s *userSource) call(ctx context.Context, path, token string, body, data any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.httpBase, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rsp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer rsp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(rsp.Body, 1<<20))
	if err != nil {
		return err
	}
	var env struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("HTTP %d, not an API envelope: %w", rsp.StatusCode, err)
	}
	if env.Code != 0 {
		return fmt.Errorf("code %d: %s", env.Code, env.Message)
	}
	return json.Unmarshal(env.Data, data)
}

// load reads the cache file: one JSON user per line. A missing file is an
// empty cache.
func (s *userSource) load() ([]benchUser, error) {
	if s.file == "" {
		return nil, nil
	}
	f, err := os.Open(s.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var users []benchUser
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var u benchUser
		if err := json.Unmarshal(sc.Bytes(), &u); err != nil || u.UserID == "" {
			return nil, fmt.Errorf("%s:%d: not a cached user (delete the file to start over)", s.file, line)
		}
		users = append(users, u)
	}
	return users, sc.Err()
}

// save appends users to the cache file.
func (s *userSource) save(users []benchUser) error {
	if s.file == "" || len(users) == 0 {
		return nil
	}
	f, err := os.OpenFile(s.file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, u := range users {
		if err := enc.Encode(u); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

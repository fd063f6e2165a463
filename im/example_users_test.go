package im_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/memstore"
)

// staffDirectory stands for a host's own user database: the server asks
// it whether users exist and what their profiles are, instead of keeping
// accounts itself. A real one queries its tables, searching nicknames
// through an index.
type staffDirectory map[string]im.User

func (d staffDirectory) UserExists(_ context.Context, id string) (bool, error) {
	_, ok := d[id]
	return ok, nil
}

func (d staffDirectory) Users(_ context.Context, ids []string) ([]im.User, error) {
	out := []im.User{}
	for _, id := range ids {
		if u, ok := d[id]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

func (d staffDirectory) SearchUsers(_ context.Context, keyword string, limit int) ([]im.User, error) {
	out := []im.User{}
	for _, id := range []string{"ada", "alan", "grace"} { // in nickname order
		u := d[id]
		if len(out) < limit && (u.ID == keyword || strings.HasPrefix(strings.ToLower(u.Nickname), strings.ToLower(keyword))) {
			out = append(out, u)
		}
	}
	return out, nil
}

// A host whose users live in its own database plugs it in as
// Config.Users; profile lookups and searches (and the HTTP API's
// /api/user routes) answer from it, and friends are kept by the Store.
func ExampleUserProfiles() {
	dir := staffDirectory{
		"ada":   {ID: "ada", Nickname: "Ada Lovelace"},
		"alan":  {ID: "alan", Nickname: "Alan Turing"},
		"grace": {ID: "grace", Nickname: "Grace Hopper"},
	}
	srv, err := im.NewServer(im.Config{
		Store: memstore.New(), // keeps friends too (im.FriendStore)
		Authenticator: im.AuthenticatorFunc(func(context.Context, string) (im.Identity, error) {
			return im.Identity{}, im.ErrUnauthenticated
		}),
		Users: dir,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()

	found, err := srv.SearchUsers(ctx, "grace", "al")
	if err != nil {
		log.Fatal(err)
	}
	for _, u := range found {
		fmt.Println("found:", u.Nickname)
	}

	// Grace asks Alan, Alan accepts: both now list the other.
	if _, err := srv.RequestFriend(ctx, "grace", "alan", "hello from the Navy"); err != nil {
		log.Fatal(err)
	}
	if _, err := srv.AcceptFriend(ctx, "alan", "grace"); err != nil {
		log.Fatal(err)
	}
	friends, err := srv.Friends(ctx, "grace")
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range friends {
		fmt.Println("grace's friend:", f.FriendID)
	}

	// A request to someone the directory does not know is refused.
	_, err = srv.RequestFriend(ctx, "grace", "nobody", "")
	fmt.Println(err)
	// Output:
	// found: Alan Turing
	// grace's friend: alan
	// user does not exist: im: not found
}

package auth_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/bolt"
)

// A token issued for a user authenticates as that user. The same *JWT goes
// into im.Config.Authenticator.
func ExampleJWT() {
	tokens, err := auth.NewJWT(auth.JWTConfig{
		// In production: 32 or more random bytes, kept secret and stable.
		Secret: []byte("an example secret of 32+ bytes!!"),
	})
	if err != nil {
		log.Fatal(err)
	}
	token, _, err := tokens.Issue("u3kq7zjx2mf5wa4hd")
	if err != nil {
		log.Fatal(err)
	}
	id, err := tokens.Authenticate(context.Background(), token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id.UserID)
	// Output: u3kq7zjx2mf5wa4hd
}

// Register an account, log in, and check the token as the Server would
// when the client connects.
func ExampleAccounts() {
	dir, err := os.MkdirTemp("", "auth-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := bolt.Open(filepath.Join(dir, "im.db"), bolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	tokens, err := auth.NewJWT(auth.JWTConfig{Secret: []byte("an example secret of 32+ bytes!!")})
	if err != nil {
		log.Fatal(err)
	}
	accounts, err := auth.NewAccounts(auth.AccountsConfig{Store: store, Tokens: tokens})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	acc, err := accounts.Register(ctx, "alice", "correct horse battery", "Alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("registered", acc.Username, "as", acc.Nickname)

	res, err := accounts.Login(ctx, "alice", "correct horse battery")
	if err != nil {
		log.Fatal(err)
	}
	id, err := tokens.Authenticate(ctx, res.Token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("token is alice's:", id.UserID == acc.UserID)

	_, err = accounts.Register(ctx, "alice", "another password", "")
	fmt.Println(err)
	// Output:
	// registered alice as Alice
	// token is alice's: true
	// username is taken: im: conflict
}

package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the driver, registered as "sqlite"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/sqlstore"
)

func Example() {
	dir, err := os.MkdirTemp("", "imserver-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The caller opens the database, with the driver of its choice, and
	// closes it after the store (and the server using it) are done.
	db, err := sql.Open("sqlite", filepath.Join(dir, "im.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx := context.Background()
	s, err := sqlstore.New(ctx, db, sqlstore.Options{Dialect: sqlstore.SQLite})
	if err != nil {
		log.Fatal(err)
	}

	conv := im.SingleConversationID("alice", "bob")
	res, err := s.AppendMessages(ctx, []im.AppendRequest{{
		Message: im.Message{
			ConversationID: conv,
			ServerID:       "m-0001",
			SenderID:       "alice",
			ReceiverID:     "bob",
			ClientMsgID:    "alice-1",
			Type:           im.TextMessage,
			Content:        []byte("hi Bob"),
			CreatedAt:      time.Now(),
		},
		Members: []string{"alice", "bob"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	if res[0].Err != nil {
		log.Fatal(res[0].Err)
	}
	fmt.Printf("%s #%d from %s\n", conv, res[0].Message.Seq, res[0].Message.SenderID)
	// Output:
	// single_alice_bob #1 from alice
}

// Postgres and MySQL take the same two steps; only the driver, the DSN and
// the Dialect differ. The pool is the caller's to size: keep about as
// many idle connections as the server has concurrent store calls.
func ExampleNew_postgres() {
	// With the driver imported: _ "github.com/jackc/pgx/v5/stdlib".
	db, err := sql.Open("pgx", "postgres://imserver@db.internal:5432/im")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(32)

	s, err := sqlstore.New(context.Background(), db, sqlstore.Options{Dialect: sqlstore.Postgres})
	if err != nil {
		log.Fatal(err)
	}
	_ = s // im.Config{Store: s, …}
}

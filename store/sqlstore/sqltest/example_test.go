package sqltest_test

import (
	"database/sql"
	"testing"

	"github.com/imserver/imserver/store/sqlstore"
	"github.com/imserver/imserver/store/sqlstore/sqltest"
)

// A test of code that keeps chat data in PostgreSQL: the schema is new, and
// dropped when the test ends; without IM_TEST_POSTGRES_DSN the test skips.
func Example() {
	_ = func(t *testing.T) {
		db, err := sql.Open("pgx", sqltest.Postgres(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		store, err := sqlstore.New(t.Context(), db, sqlstore.Options{Dialect: sqlstore.Postgres})
		if err != nil {
			t.Fatal(err)
		}
		_ = store // hand it to im.NewServer
	}
}

package sqlstore_test

import (
	"testing"

	"github.com/imserver/imserver/store/sqlstore/sqltest"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/sqlstore"
	"github.com/imserver/imserver/store/storetest"
)

func BenchmarkSQLite(b *testing.B)   { benchmark(b, sqliteBackend) }
func BenchmarkPostgres(b *testing.B) { benchmark(b, postgresBackend) }
func BenchmarkMySQL(b *testing.B)    { benchmark(b, mysqlBackend) }

func benchmark(b *testing.B, be backend) {
	if be.env != "" {
		sqltest.Need(b, be.env)
	}
	storetest.RunBenchmarks(b, func(b *testing.B) im.Store {
		// No logger: the benchmark output stays a table.
		db := openDB(b, be.driver, be.fresh(b))
		s, err := sqlstore.New(b.Context(), db, sqlstore.Options{Dialect: be.dialect})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

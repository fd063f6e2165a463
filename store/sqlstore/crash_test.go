package sqlstore_test

import (
	"testing"
	"time"

	"github.com/imserver/imserver/store/sqlstore/sqltest"
	"github.com/imserver/imserver/store/storetest"
)

// crashHarness runs storetest.RunCrash against b: the parent makes the
// database, each child connects to it, appends and is killed, with its
// transactions open, and the parent connects again and checks.
func (b backend) crashHarness(d time.Duration) storetest.CrashHarness {
	return storetest.CrashHarness{
		Location: func(t *testing.T) string { return b.fresh(t) },
		Open: func(t *testing.T, dsn string) storetest.CrashStore {
			return b.newStore(t, openDB(t, b.driver, dsn))
		},
		Duration: d,
	}
}

// The crash tests set STORETEST_CRASH_DURATION to run longer.

func TestSQLiteCrash(t *testing.T) {
	storetest.RunCrash(t, sqliteBackend.crashHarness(0))
}

func TestPostgresCrash(t *testing.T) {
	sqltest.Need(t, sqltest.PostgresEnv)
	storetest.RunCrash(t, postgresBackend.crashHarness(15*time.Second))
}

func TestMySQLCrash(t *testing.T) {
	sqltest.Need(t, sqltest.MySQLEnv)
	storetest.RunCrash(t, mysqlBackend.crashHarness(15*time.Second))
}

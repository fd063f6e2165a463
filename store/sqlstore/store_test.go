package sqlstore_test

import (
	"testing"

	"github.com/imserver/imserver/store/sqlstore/sqltest"

	"github.com/imserver/imserver/store/storetest"
)

func TestSQLiteConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, sqliteBackend.harness())
}

func TestPostgresConformance(t *testing.T) {
	sqltest.Need(t, sqltest.PostgresEnv)
	t.Parallel()
	storetest.Run(t, postgresBackend.harness())
}

func TestMySQLConformance(t *testing.T) {
	sqltest.Need(t, sqltest.MySQLEnv)
	t.Parallel()
	storetest.Run(t, mysqlBackend.harness())
}

func TestMySQLInterpolateParamsConformance(t *testing.T) {
	sqltest.Need(t, sqltest.MySQLEnv)
	t.Parallel()
	storetest.Run(t, mysqlInterpolatedBackend.harness())
}

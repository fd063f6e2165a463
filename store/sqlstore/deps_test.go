package sqlstore_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoDriver checks that the package links in no SQL driver: a
// program that uses only PostgreSQL must not carry MySQL or SQLite.
func TestLinksNoDriver(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go tool is not on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/imserver/imserver/store/sqlstore").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, driver := range []string{"github.com/go-sql-driver/mysql", "github.com/jackc/pgx", "modernc.org/sqlite"} {
			if strings.HasPrefix(dep, driver) {
				t.Errorf("store/sqlstore depends on the driver %s", dep)
			}
		}
	}
}

package main

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSQLiteBuildTag builds imserver as a newcomer would: without tags,
// -store sqlite is refused with the command that builds a binary with SQLite,
// before anything is written; built with -tags sqlite, it serves. (This test
// binary links the driver through sqltest, so the other SQLite tests here
// run whatever the tags.)
func TestSQLiteBuildTag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds imserver twice")
	}
	require.EqualError(t, sqliteLinked(nil), "-store sqlite: this imserver was built without SQLite; "+
		"build one with it: go build -tags sqlite ./cmd/imserver (or go run -tags sqlite ./cmd/imserver)")
	require.NoError(t, sqliteLinked(sql.Drivers()))

	plain := buildImserver(t)
	data := t.TempDir()
	out, err := exec.Command(plain, "-store", "sqlite", "-data", data).CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	require.Equal(t, 2, exit.ExitCode(), "%s", out)
	require.Contains(t, string(out), "go build -tags sqlite ./cmd/imserver")
	entries, err := os.ReadDir(data)
	require.NoError(t, err)
	require.Empty(t, entries, "a refused start writes nothing")

	tagged := filepath.Join(t.TempDir(), "imserver-sqlite")
	out, err = exec.Command("go", "build", "-tags", "sqlite", "-o", tagged, ".").CombinedOutput()
	require.NoError(t, err, "go build -tags sqlite:\n%s", out)
	startProcess(t, tagged, "sqlite", filepath.Join(t.TempDir(), "a.sqlite"))
}

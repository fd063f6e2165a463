package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// refusedStart runs the server with args and returns the error it refuses
// to start with; it fails the test if the server starts.
func refusedStart(t *testing.T, args ...string) error {
	t.Helper()
	logs := new(syncBuffer)
	cfg, err := parseConfig(args, func(string) string { return "" }, logs)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, logs, func(listeners) { cancel() }) }()
	err = <-done
	require.Error(t, err, "the server started")
	return err
}

func TestSecondServerOnBoltDataDir(t *testing.T) {
	dir := t.TempDir()
	_, stop := start(t, dir, new(syncBuffer))
	pid, err := os.ReadFile(filepath.Join(dir, pidFile))
	require.NoError(t, err, "a running server keeps its pid in the data dir")
	require.Equal(t, fmt.Sprintf("%d\n", os.Getpid()), string(pid))

	// bbolt's lock is per open file, so a second open from this process
	// is refused as one from another process would be.
	err = refusedStart(t, "-data", dir, "-http", "127.0.0.1:0", "-ws", "", "-tcp", "")
	require.ErrorContains(t, err, fmt.Sprintf("another imserver (pid %d) is using -data %s: stop it or choose another directory", os.Getpid(), dir))

	stop()
	require.NoFileExists(t, filepath.Join(dir, pidFile), "removed at shutdown")
}

func TestSQLiteFileThatCannotBeOpened(t *testing.T) {
	// A directory that is a file cannot be created in, whoever runs the
	// test (root ignores permission bits).
	notDir := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	dsn := filepath.Join(notDir, "imserver.sqlite")
	err := refusedStart(t, "-store", "sqlite", "-dsn", dsn, "-data", t.TempDir(), "-http", "127.0.0.1:0", "-ws", "", "-tcp", "")
	require.ErrorContains(t, err, "sqlite store "+dsn)
	require.ErrorContains(t, err, "unable to open database file")
	require.ErrorContains(t, err, "its directory must exist and this user must be able to write in it")
}

func TestListenAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	addr := taken.Addr().String()
	for _, args := range [][]string{
		{"-http", addr, "-ws", "", "-tcp", ""},
		{"-http", "", "-ws", addr, "-tcp", ""},
		{"-http", "", "-ws", "", "-tcp", addr},
		{"-http", "127.0.0.1:0", "-ws", "", "-tcp", "", "-debug-addr", addr},
	} {
		flag := args[1]
		for i := 0; i < len(args); i += 2 {
			if args[i+1] == addr {
				flag = args[i]
			}
		}
		err := refusedStart(t, append([]string{"-data", t.TempDir()}, args...)...)
		require.ErrorContains(t, err, flag+" "+addr+": address already in use (another server running?)")
	}
}

func TestShutdownLogged(t *testing.T) {
	logs := new(syncBuffer)
	_, stop := start(t, t.TempDir(), logs)
	stop()
	require.Contains(t, logs.String(), "msg=\"shutting down\" grace=15s")
	require.Regexp(t, `msg="shut down" took=\d`, logs.String())
}

// Command imserver runs a complete instant-messaging server with zero
// configuration: a bbolt store under ./data, built-in accounts with JWT
// tokens, the HTTP API on :8080, WebSocket on :8081 (/ws) and TCP on :8082 —
// the defaults IM-iOS-SDK expects.
//
// Every setting is a flag and an environment variable; `imserver -h` lists
// them; `imserver -version` prints the version and commit it was built
// from. `imserver check` verifies a data dir offline (`imserver check -h`). It only composes the packages of this module; see package im for the
// server itself.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "check" {
		os.Exit(checkMain(context.Background(), os.Args[2:], os.Getenv, os.Stdout))
	}
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, errHelp) {
		os.Exit(0)
	}
	if errors.Is(err, errVersion) {
		bi, ok := debug.ReadBuildInfo()
		fmt.Println(versionLine(bi, ok))
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imserver:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "imserver:", err)
		os.Exit(1)
	}
}

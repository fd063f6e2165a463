package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/imserver/imserver/store/bolt"
)

// checkMain runs "imserver check": it verifies a data dir offline (the
// manifest, bbolt's page check, the store's invariants and every record's
// checksum), prints each problem, and returns the exit code: 0 when clean,
// 1 when it found problems, 2 when it could not check.
func checkMain(ctx context.Context, args []string, getenv func(string) string, out io.Writer) int {
	fs := flag.NewFlagSet("imserver check", flag.ContinueOnError)
	fs.SetOutput(out)
	dir := fs.String("data", "./data", "the data dir to check (env IM_DATA_DIR)")
	store := fs.String("store", "bolt", "the data dir's store; only bolt can be checked (env IM_STORE)")
	tmp := fs.String("tmp", "", "where to copy the database while checking it (default the system's temporary directory); it needs room for a copy")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: imserver check [flags]\n\nVerifies a data dir without changing it: its manifest, bbolt's page check, the store's invariants and the checksum of every record. The server must not be running on it. Prints each problem found and exits 1, or a summary and 0 when all is well.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(out, "imserver check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if v := getenv("IM_DATA_DIR"); v != "" && !given["data"] {
		*dir = v
	}
	if v := getenv("IM_STORE"); v != "" && !given["store"] {
		*store = v
	}
	if *store != "bolt" {
		fmt.Fprintf(out, "imserver check: only the bolt store can be checked, not %s: check a SQL database with its own tools\n", *store)
		return 2
	}

	var problems []string
	problem := func(format string, args ...any) {
		p := fmt.Sprintf(format, args...)
		problems = append(problems, p)
		fmt.Fprintln(out, "problem:", p)
	}
	m, err := readManifest(*dir)
	if err != nil {
		problem("%v", err)
	}
	path := filepath.Join(*dir, boltFile)
	if err := checkBoltFile(*dir, m); err != nil {
		problem("%v", err)
	}
	var report *bolt.FileReport
	switch fi, err := os.Stat(path); {
	case errors.Is(err, os.ErrNotExist) && m == nil:
		fmt.Fprintf(out, "imserver check: %s holds no store (no %s, no manifest)\n", *dir, boltFile)
		return 2
	case err == nil && fi.Size() > 0: // an empty one is reported above
		report, err = bolt.CheckFile(ctx, path, *tmp)
		if err != nil {
			fmt.Fprintf(out, "imserver check: cannot check %s: %v\n", path, err)
			return 2
		}
		for _, p := range report.Problems {
			problem("%v", p)
		}
	}
	if report != nil && report.ID != "" && m != nil && m.StoreID != report.ID {
		problem("the database's store id is %s, but %s says %s: it is not the store this data dir was initialised with", report.ID, filepath.Join(*dir, manifestName), m.StoreID)
	}
	if len(problems) > 0 {
		fmt.Fprintf(out, "imserver check: %d problem(s) found in %s\n", len(problems), *dir)
		return 1
	}
	note, id := "", report.ID
	if id == "" {
		id = "(no id yet)"
	}
	if report.Unsealed {
		note += "; its records from before checksums cannot be verified"
	}
	if m == nil {
		note += "; no manifest yet (the server writes it at its next start)"
	}
	fmt.Fprintf(out, "imserver check: %s is clean: bolt store %s, %d conversations, %d messages, %d accounts, %d groups%s\n",
		*dir, id, report.Conversations, report.Messages, report.Accounts, report.Groups, note)
	return 0
}

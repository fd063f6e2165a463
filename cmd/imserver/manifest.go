package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// The manifest is a small file in the data dir that says the dir was
// initialised, with which store, and which one: the store's identity is
// kept in the database too. Without it, a database file that went missing
// or was emptied would be taken for a first start, and the server would
// begin again with an empty store, handing out seqs and accepting
// client_msg_ids its clients had already seen acknowledged.
const (
	manifestName   = "imserver.json"
	manifestFormat = 1
	boltFile       = "imserver.db"
)

type manifest struct {
	Format    int       `json:"format"`
	Store     string    `json:"store"`
	StoreID   string    `json:"store_id"`
	CreatedAt time.Time `json:"created_at"`
}

// readManifest reads the data dir's manifest; (nil, nil) when it has none.
func readManifest(dir string) (*manifest, error) {
	path := filepath.Join(dir, manifestName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil || m.Format < 1 || m.Store == "" || m.StoreID == "" {
		return nil, fmt.Errorf("%s is damaged or not a manifest; restore the data dir from a backup, or, if the database in it is the right one, remove %s to adopt it", path, path)
	}
	if m.Format > manifestFormat {
		return nil, fmt.Errorf("%s has format %d; this imserver reads %d: run a newer imserver", path, m.Format, manifestFormat)
	}
	return &m, nil
}

// writeManifest writes m into dir atomically: a temporary file, synced,
// renamed over the manifest, and the dir synced.
func writeManifest(dir string, m manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, manifestName+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, there is nothing to remove
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, manifestName)); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // not supported everywhere (Windows); the rename is done
		d.Close()
	}
	return nil
}

// checkBoltFile refuses to go on with the bolt file of the data dir when
// it cannot be the store the manifest m (nil if none) names: missing or
// empty when one was created, or empty even without a manifest.
func checkBoltFile(dir string, m *manifest) error {
	path := filepath.Join(dir, boltFile)
	fi, err := os.Stat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	manifestPath := filepath.Join(dir, manifestName)
	switch {
	case err != nil && m != nil:
		return fmt.Errorf("%s is missing, but %s says a store was created in this data dir on %s: the data was lost or moved. Restore %s from a backup; to start over with an empty store instead, remove %s (clients will see their history and seqs start again)",
			path, manifestPath, m.CreatedAt.Format(time.RFC3339), boltFile, manifestPath)
	case err == nil && fi.Size() == 0 && m != nil:
		return fmt.Errorf("%s is empty (0 bytes), but %s says a store was created in this data dir on %s: the data was lost. Restore %s from a backup; to start over with an empty store instead, remove both files (clients will see their history and seqs start again)",
			path, manifestPath, m.CreatedAt.Format(time.RFC3339), boltFile)
	case err == nil && fi.Size() == 0:
		return fmt.Errorf("%s is empty (0 bytes): it is no store, and starting over would forget every message. Restore it from a backup; to start over with an empty store instead, remove it", path)
	}
	return nil
}

// bindManifest ties the opened store, of kind store with identity id, to
// the data dir: it writes the manifest of a new or adopted store, and
// refuses a store that is not the one the manifest names.
func bindManifest(dir, store, id string, m *manifest, log *slog.Logger) error {
	manifestPath := filepath.Join(dir, manifestName)
	if m == nil {
		if err := writeManifest(dir, manifest{Format: manifestFormat, Store: store, StoreID: id, CreatedAt: time.Now().UTC()}); err != nil {
			return fmt.Errorf("write %s: %w", manifestPath, err)
		}
		log.Info("wrote the data dir's manifest", "path", manifestPath, "store", store, "store_id", id)
		return nil
	}
	if m.Store != store {
		return fmt.Errorf("%s says this data dir holds a %s store, not %s: run with -store %s, or use another -data dir", manifestPath, m.Store, store, m.Store)
	}
	if m.StoreID != id {
		what := "it was replaced, or restored from another server. Put the right one back"
		if store != "bolt" {
			what = "-dsn names another database, or it was recreated or restored from another server. Point -dsn at the right one"
		}
		return fmt.Errorf("the %s store is not the one this data dir was initialised with (its id is %s, %s says %s): %s; if this one is meant to be used, remove %s to adopt it",
			store, id, manifestPath, m.StoreID, what, manifestPath)
	}
	return nil
}

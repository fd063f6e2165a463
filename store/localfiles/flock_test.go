//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package localfiles_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/imserver/imserver/store/localfiles"
)

// The claim the shared-directory tests rest on: a flock held through one
// open of a shard's lock file keeps out another open of it in the same
// process, as it would another process, and is released by the unlock.
func TestShardLockContendsWithinOneProcess(t *testing.T) {
	dir := t.TempDir()
	s, err := localfiles.Open(dir, localfiles.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Create(t.Context(), newMeta(), strings.NewReader("x"), 10)
	if err != nil {
		t.Fatal(err)
	}
	shard := m.ID[:2]
	tryLock := func() error {
		f, err := os.Open(filepath.Join(dir, shard, ".lock"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close() // releases the lock, if taken
		return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	unlock, err := localfiles.LockShard(s, shard)
	if err != nil {
		t.Fatal(err)
	}
	if err := tryLock(); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("flock of a second open of a held lock file = %v; want EWOULDBLOCK", err)
	}
	unlock()
	if err := tryLock(); err != nil {
		t.Errorf("flock of the lock file once released = %v", err)
	}
}
